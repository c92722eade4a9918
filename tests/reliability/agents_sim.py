"""A simulated agent fleet for the reliability tests: asyncio, loopback only, stdlib HTTP/1.1.

Each simulated agent onboards through the real API (register, claim with a user token, poll for its
key, get tagged into a topology, fetch its configuration) and then works like the real agent: it sends
heartbeats and result batches on its own keep-alive connection and resends a batch until it gets a
2xx. Every exchange lands in a :class:`Ledger`, which checks each answer against the contract
(AGENT_API.md §2, §6.2, §6.4) and remembers every result id a 202 acknowledged, so a test can prove
afterwards that each acknowledged id is stored exactly once.

Run a fleet from a synchronous test with :func:`in_background` (its own event loop in a thread) while
the test itself stops databases, kills workers or sends signals.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime

from uuid6 import uuid7

API = "/api/v1"
CLAIM_TOKEN = "Fl33tS1m" * 8  # every simulated agent uses this 64-character claim token
ERROR_KEYS = {"error", "message", "request_id"}
INGEST_KEYS = {"submission_id", "accepted", "duplicates_skipped", "rejected", "received_at"}


# ---------------------------------------------------------------------------------------------
# HTTP/1.1 over asyncio streams


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self):
        return json.loads(self.body)


class TransportError(Exception):
    """No complete answer. ``kind``: refused (connect refused), timeout, reset (RST) or eof (closed
    without a complete answer); ``reused``: the request went out on a kept-alive connection."""

    def __init__(self, kind: str, *, reused: bool = False, partial: bool = False):
        super().__init__(kind)
        self.kind, self.reused, self.partial = kind, reused, partial


async def _read_reply(reader: asyncio.StreamReader) -> Reply:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in filter(None, lines):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
    else:
        length = int(headers.get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
    return Reply(status, headers, body)


class Connection:
    """One client connection; reopened on demand. ``keep_alive=False`` sends ``Connection: close``."""

    def __init__(self, host: str, port: int, *, keep_alive: bool = True):
        self.host, self.port, self.keep_alive = host, port, keep_alive
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    def _encode(self, method: str, path: str, body, headers: dict | None) -> bytes:
        data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines.append("Connection: " + ("keep-alive" if self.keep_alive else "close"))
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + data

    async def request(self, method: str, path: str, body=None, headers=None, *, timeout: float = 30.0) -> Reply:
        payload = self._encode(method, path, body, headers)
        reused = self.writer is not None
        try:
            if not reused:
                opening = asyncio.open_connection(self.host, self.port)
                self.reader, self.writer = await asyncio.wait_for(opening, timeout)
            self.writer.write(payload)
            await self.writer.drain()
            reply = await asyncio.wait_for(_read_reply(self.reader), timeout)
        except ConnectionRefusedError:
            self.close()
            raise TransportError("refused") from None
        except TimeoutError:
            self.close()
            raise TransportError("timeout", reused=reused) from None
        except asyncio.IncompleteReadError as exc:
            self.close()
            raise TransportError("eof", reused=reused, partial=bool(exc.partial)) from None
        except (ConnectionError, OSError):
            self.close()
            raise TransportError("reset", reused=reused) from None
        if not self.keep_alive or reply.headers.get("connection", "").lower() == "close":
            self.close()
        return reply


# ---------------------------------------------------------------------------------------------
# What agents send


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def heartbeat_body(checks: int) -> dict:
    """The current agent's nested heartbeat (contract §6.2)."""
    return {
        "timestamp": now_rfc3339(),
        "health_status": "healthy",
        "metrics": {
            "agent_uptime_secs": 600,
            "cpu_usage_percent": 2.5,
            "memory_usage_mb": 40.0,
            "memory_total_mb": 2048.0,
            "system_uptime_secs": 86400,
        },
        "agent_status": {
            "agent_version": "0.4.2-sim",
            "config_version": 1,
            "is_running": True,
            "started_at": "2026-01-01T00:00:00Z",
            "stopped_at": None,
            "checks_performed": checks,
            "checks_successful": checks,
            "checks_failed": 0,
            "reported_at": None,
            "failed_report_count": 0,
            "server_connected": True,
            "cache_stats": {"len": 0, "capacity": 10000},
        },
    }


_RESULTS = {
    "ping": lambda: {
        "resolved_ip": "192.0.2.10",
        "successes": 3,
        "failures": 0,
        "success_latencies": [1.2, 1.4, 1.1],
        "error_details": None,
    },
    "tcpconnect": lambda: {
        "resolved_ip": "192.0.2.10",
        "connected": True,
        "connect_time_ms": 3.5,
        "error_details": None,
    },
    "httpget": lambda: {
        "status_code": 200,
        "success": True,
        "response_time_ms": 12.0,
        "response_size_bytes": 512,
        "error_details": None,
    },
}


def result_item(agent_id: str, endpoint_id: str, check_type: str = "ping") -> dict:
    """One MonitoringResult (contract §6.4) with a fresh agent-made UUIDv7 id."""
    return {
        "id": str(uuid7()),
        "agent_id": agent_id,
        "endpoint_id": endpoint_id,
        "timestamp": now_rfc3339(),
        "check_type": {"type": check_type, "result": _RESULTS[check_type]()},
    }


@dataclass
class Batch:
    """A result batch as the agent keeps it: the same body is resent until a 2xx arrives."""

    number: int
    agent_id: str
    items: list[dict]
    acks: list[tuple[int, int]] = field(default_factory=list)  # (accepted, duplicates_skipped) per 202

    @property
    def ids(self) -> list[str]:
        return [item["id"] for item in self.items]

    @property
    def body(self) -> bytes:
        return json.dumps({"results": self.items}).encode()


# ---------------------------------------------------------------------------------------------
# The ledger: every exchange, checked against the contract


@dataclass
class Exchange:
    kind: str  # heartbeat, results, resend, ready, ...
    started: float  # time.monotonic()
    finished: float
    status: int | None  # None: a transport error
    error: str = ""  # TransportError.kind, or the contract error code of a non-2xx answer
    request_id: str = ""


@dataclass
class Ledger:
    """Everything the clients saw. ``problems`` lists contract violations; a test asserts it empty."""

    exchanges: list[Exchange] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, exchange: Exchange) -> None:
        with self.lock:
            self.exchanges.append(exchange)

    def problem(self, text: str) -> None:
        with self.lock:
            if len(self.problems) < 200:
                self.problems.append(text)

    def check_error(self, kind: str, reply: Reply) -> str:
        """A non-2xx answer must be the contract's JSON error; a 503 must also carry Retry-After."""
        try:
            body = reply.json()
        except ValueError:
            self.problem(f"{kind}: {reply.status} without a JSON body: {reply.body[:200]!r}")
            return "not-json"
        if not reply.headers.get("content-type", "").startswith("application/json"):
            self.problem(f"{kind}: {reply.status} with content type {reply.headers.get('content-type')!r}")
        if not isinstance(body, dict) or not set(body) >= ERROR_KEYS:
            self.problem(f"{kind}: {reply.status} body is not the contract's error shape: {body!r:.200}")
            return "bad-shape"
        if reply.status == 503 and not (body["error"] == "service_unavailable" and reply.headers.get("retry-after")):
            self.problem(f"{kind}: 503 without service_unavailable and Retry-After: {body!r:.200}")
        return body["error"]

    def acknowledge(self, batch: Batch, reply: Reply) -> None:
        """A 202: nothing of a good batch is rejected, and every item is accepted or a duplicate."""
        body = reply.json()
        size = len(batch.items)
        if set(body) != INGEST_KEYS:
            self.problem(f"batch {batch.number}: 202 body keys {sorted(body)}")
        if body.get("rejected"):
            self.problem(f"batch {batch.number}: items rejected: {body['rejected'][:3]!r}")
        accepted, duplicates = body.get("accepted", -1), body.get("duplicates_skipped", -1)
        if accepted + duplicates != size:
            self.problem(f"batch {batch.number}: accepted {accepted} + duplicates {duplicates} != {size}")
        with self.lock:
            batch.acks.append((accepted, duplicates))
            self.acknowledged.update(batch.ids)

    # Figures

    def statuses(self, kinds: tuple[str, ...] | None = None) -> Counter:
        return Counter(
            exchange.status if exchange.status is not None else exchange.error
            for exchange in self.exchanges
            if kinds is None or exchange.kind in kinds
        )

    def requests(self) -> int:
        return len(self.exchanges)

    def accepted_total(self) -> int:
        return sum(accepted for batch in self.batches for accepted, _ in batch.acks)

    def duplicates_total(self) -> int:
        return sum(duplicates for batch in self.batches for _, duplicates in batch.acks)


# ---------------------------------------------------------------------------------------------
# Onboarding


@dataclass
class Topology:
    """What :func:`provision` made: a section whose agents monitor ``endpoint_ids``."""

    section_id: str
    monitor_tag_id: str
    endpoint_ids: list[str]


@dataclass
class SimAgent:
    agent_id: str
    key: str
    endpoint_ids: list[str]

    @property
    def headers(self) -> dict:
        return {"X-Agent-API-Key": self.key}

    def path(self, route: str) -> str:
        return f"{API}/agent/{self.agent_id}/{route}"


async def _expect(conn: Connection, status: int, method: str, path: str, body=None, headers=None) -> dict | None:
    reply = await conn.request(method, path, body, headers)
    assert reply.status == status, (method, path, reply.status, reply.body[:500])
    return reply.json() if reply.body else None


async def provision(host: str, port: int, token: str, *, endpoints: int = 10, name: str = "fleet") -> Topology:
    """A tenant, a section, an agent tag and ``endpoints`` endpoints joined by a topology, via the API."""
    conn, auth = Connection(host, port), {"Authorization": f"Bearer {token}"}
    try:
        tenant = await _expect(conn, 201, "POST", f"{API}/tenants", {"name": name}, auth)
        section = await _expect(conn, 201, "POST", f"{API}/sections", {"tenant_id": tenant["id"], "name": name}, auth)
        tag = {"section_id": section["id"], "scope": "agent", "name": "probes"}
        monitor = await _expect(conn, 201, "POST", f"{API}/tags", tag, auth)
        tag = {"section_id": section["id"], "scope": "endpoint", "name": "targets"}
        target = await _expect(conn, 201, "POST", f"{API}/tags", tag, auth)
        endpoint_ids = []
        for index in range(endpoints):
            body = {"section_id": section["id"], "address": f"198.51.100.{index + 1}", "tag_ids": [target["id"]]}
            endpoint_ids.append((await _expect(conn, 201, "POST", f"{API}/endpoints", body, auth))["id"])
        topology = {
            "section_id": section["id"],
            "name": "mesh",
            "type": "full-mesh",
            "monitor_tag_ids": [monitor["id"]],
            "target_tag_ids": [target["id"]],
        }
        await _expect(conn, 201, "POST", f"{API}/topologies", topology, auth)
    finally:
        conn.close()
    return Topology(section["id"], monitor["id"], endpoint_ids)


async def onboard_one(conn: Connection, token: str, topology: Topology, index: int) -> SimAgent:
    """Register, claim (user token), poll for the key, join the topology, read the configuration."""
    agent_id = str(uuid.uuid4())
    registration = {
        "agentId": agent_id,
        "claimTokenHash": hashlib.sha256(CLAIM_TOKEN.encode()).hexdigest(),
        "hostname": f"sim-{index}",
        "agentVersion": "0.4.2-sim",
        "ipAddresses": [
            {"ip": f"10.{index // 250}.{index % 250}.1", "iface": "eth0", "family": "ipv4", "recommended": True}
        ],
    }
    await _expect(conn, 201, "POST", f"{API}/agent/register", registration)
    auth = {"Authorization": f"Bearer {token}"}
    claim = {"agentId": agent_id, "claimToken": CLAIM_TOKEN, "sectionId": topology.section_id}
    await _expect(conn, 200, "POST", f"{API}/agents/claim", claim, auth)
    poll = await _expect(conn, 200, "GET", f"{API}/agent/{agent_id}/claim-status")
    assert poll["status"] == "claimed", poll
    await _expect(conn, 200, "PATCH", f"{API}/agents/{agent_id}", {"tag_ids": [topology.monitor_tag_id]}, auth)
    agent = SimAgent(agent_id, poll["apiKey"], [])
    document = await _expect(conn, 200, "GET", agent.path("configuration"), headers=agent.headers)
    agent.endpoint_ids = [endpoint["id"] for endpoint in document["endpoints"]]
    assert sorted(agent.endpoint_ids) == sorted(topology.endpoint_ids), document["endpoints"]
    return agent


async def onboard_fleet(
    host: str, port: int, token: str, topology: Topology, count: int, *, concurrency: int = 16
) -> list[SimAgent]:
    """Onboard ``count`` agents, ``concurrency`` at a time (each worker keeps one connection)."""
    pending = iter(range(count))
    agents: list[SimAgent] = []

    async def worker():
        conn = Connection(host, port)
        try:
            for index in pending:
                agents.append(await onboard_one(conn, token, topology, index))
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return agents


# ---------------------------------------------------------------------------------------------
# Working agents


@dataclass
class Behaviour:
    """How simulated agents work. ``retry``: resend a batch that got no 2xx until one arrives (what
    the real agent does); without it a failed batch is dropped (and the failure counted)."""

    batch_sizes: tuple[int, int] = (20, 50)
    resend_ratio: float = 0.1  # of acknowledged batches, resent at once (a lost 202, say)
    concurrent_resend_ratio: float = 0.0  # of batches, sent on two connections at the same time
    think: tuple[float, float] = (0.0, 0.1)  # pause between rounds, seconds
    retry: bool = False
    retry_delay: float = 0.2  # instead of Retry-After, to keep tests short
    settle_seconds: float = 30.0  # after the deadline, how long retries may go on
    timeout: float = 30.0


class Fleet:
    """Agents working until ``deadline`` (monotonic) or :meth:`stop`; results go to ``ledger``."""

    def __init__(self, host: str, port: int, agents: list[SimAgent], behaviour: Behaviour, ledger: Ledger):
        self.host, self.port, self.agents = host, port, agents
        self.behaviour, self.ledger = behaviour, ledger
        self.stopping = threading.Event()
        self.numbers = iter(range(1, 10**9))
        self.random = random.Random(1234)

    def stop(self) -> None:
        self.stopping.set()

    async def call(self, conn: Connection, kind: str, method: str, path: str, body=None, headers=None) -> Reply | None:
        request_id = uuid.uuid4().hex
        started = time.monotonic()
        try:
            reply = await conn.request(
                method, path, body, {**(headers or {}), "X-Request-ID": request_id}, timeout=self.behaviour.timeout
            )
        except TransportError as exc:
            self.ledger.record(Exchange(kind, started, time.monotonic(), None, exc.kind, request_id))
            return None
        error = "" if reply.status < 400 else self.ledger.check_error(kind, reply)
        self.ledger.record(Exchange(kind, started, time.monotonic(), reply.status, error, request_id))
        return reply

    async def heartbeat(self, conn: Connection, agent: SimAgent, checks: int) -> None:
        reply = await self.call(
            conn, "heartbeat", "POST", agent.path("heartbeat"), heartbeat_body(checks), agent.headers
        )
        if reply is not None and reply.status < 400 and (reply.status, reply.body) != (204, b""):
            self.ledger.problem(f"heartbeat answered {reply.status} {reply.body[:100]!r}, not 204 and empty")

    async def send(self, conn: Connection, agent: SimAgent, batch: Batch, kind: str = "results") -> bool:
        reply = await self.call(conn, kind, "POST", agent.path("results"), batch.body, agent.headers)
        if reply is None or reply.status >= 300:
            return False
        if reply.status != 202:
            self.ledger.problem(f"batch {batch.number}: answered {reply.status}, not 202")
            return False
        self.ledger.acknowledge(batch, reply)
        return True

    def new_batch(self, agent: SimAgent) -> Batch:
        size = self.random.randint(*self.behaviour.batch_sizes)
        types = list(_RESULTS)
        items = [
            result_item(agent.agent_id, agent.endpoint_ids[i % len(agent.endpoint_ids)], types[i % len(types)])
            for i in range(size)
        ]
        batch = Batch(next(self.numbers), agent.agent_id, items)
        with self.ledger.lock:
            self.ledger.batches.append(batch)
        return batch

    def working(self, deadline: float) -> bool:
        return time.monotonic() < deadline and not self.stopping.is_set()

    async def deliver(self, conn: Connection, agent: SimAgent, batch: Batch, deadline: float) -> None:
        """Send until acknowledged (with ``retry``), as the agent does: a batch is never given up."""
        kind = "results"
        while not await self.send(conn, agent, batch, kind):
            settle = deadline + self.behaviour.settle_seconds
            if not self.behaviour.retry or time.monotonic() > settle or self.stopping.is_set():
                return
            kind = "retry"
            await asyncio.sleep(self.behaviour.retry_delay)

    async def drive(self, agent: SimAgent, deadline: float) -> None:
        conn, spare = Connection(self.host, self.port), Connection(self.host, self.port)
        rounds = 0
        try:
            while self.working(deadline):
                rounds += 1
                await self.heartbeat(conn, agent, rounds)
                batch = self.new_batch(agent)
                if self.random.random() < self.behaviour.concurrent_resend_ratio:
                    # The same batch on two connections at once: a resend racing a slow original.
                    await asyncio.gather(self.send(conn, agent, batch), self.send(spare, agent, batch, "concurrent"))
                if not batch.acks:
                    await self.deliver(conn, agent, batch, deadline)
                if batch.acks and self.random.random() < self.behaviour.resend_ratio:
                    await self.send(conn, agent, batch, "resend")
                await asyncio.sleep(self.random.uniform(*self.behaviour.think))
        finally:
            conn.close()
            spare.close()

    async def run(self, seconds: float) -> float:
        """Work for ``seconds`` (or until stopped); returns the elapsed time."""
        started = time.monotonic()
        await asyncio.gather(*(self.drive(agent, started + seconds) for agent in self.agents))
        return time.monotonic() - started


# ---------------------------------------------------------------------------------------------
# Running a coroutine beside a synchronous test


class Background:
    """A coroutine on its own event loop in a daemon thread; :meth:`result` joins it."""

    def __init__(self, make: Callable[[], Coroutine]):
        self._value = self._error = None
        self._thread = threading.Thread(target=self._main, args=(make,), daemon=True)
        self._thread.start()

    def _main(self, make) -> None:
        try:
            self._value = asyncio.run(make())
        except BaseException as exc:  # handed to the test thread by result()
            self._error = exc

    def result(self, timeout: float):
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"background work still running after {timeout}s"
        if self._error is not None:
            raise self._error
        return self._value


def in_background(make: Callable[[], Coroutine]) -> Background:
    return Background(make)


# ---------------------------------------------------------------------------------------------
# Accounting against the database


@dataclass
class Accounting:
    acknowledged: int  # distinct ids some 202 acknowledged
    stored_acknowledged: int  # of those, stored
    not_exactly_once: dict[str, int]  # acknowledged id -> times stored, when not 1
    fleet_rows: int  # every result row of the fleet's agents
    accepted_total: int  # the sum of "accepted" over all 202s
    duplicates_total: int
    batches: int
    partial_batches: list[int]  # batch numbers whose ids are stored partly (neither 0 nor all)


def account(ledger: Ledger, count_ids: Callable[[list[str]], dict[str, int]], fleet_rows: int) -> Accounting:
    """Compare the ledger with the database. ``count_ids(ids)`` answers {id: rows with that id}."""
    every_id = [item_id for batch in ledger.batches for item_id in batch.ids]
    counts = count_ids(every_id)
    acknowledged = sorted(ledger.acknowledged)
    wrong = {item_id: counts.get(item_id, 0) for item_id in acknowledged if counts.get(item_id, 0) != 1}
    partial = []
    for batch in ledger.batches:
        stored = sum(1 for item_id in batch.ids if counts.get(item_id, 0))
        if stored not in (0, len(batch.ids)):
            partial.append(batch.number)
    return Accounting(
        acknowledged=len(acknowledged),
        stored_acknowledged=sum(1 for item_id in acknowledged if counts.get(item_id, 0)),
        not_exactly_once=wrong,
        fleet_rows=fleet_rows,
        accepted_total=ledger.accepted_total(),
        duplicates_total=ledger.duplicates_total(),
        batches=len(ledger.batches),
        partial_batches=partial,
    )


def chunks(values: list, size: int = 500):
    for start in range(0, len(values), size):
        yield values[start : start + size]
