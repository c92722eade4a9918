"""What one batch of 100 results costs the server, path by path: validation, payload, insert.

    .venv/bin/python bench/ingest_paths.py [--rounds 7] [--batches 20] [--parts validation,payload,insert]
        [--shape mix|fleet]

Measurement only, for the issue "bulk insert with executemany/COPY and validation that costs little
per item" (target 15,000 items/s over HTTP in batches of 100: about 6.7 ms of server CPU per batch,
against about 9.8 ms then). Nothing here is production code. Ingestion took the per-item
``msgspec.convert`` of the parser's dicts from part 1 (results.typed_items, ResultRow instead of
CheckResult): "ingestion now" is that, "plain checks" the code before it, which still judges every
item the types refuse. Three parts, each on the same realistic batches (100 items, a
mix of every check type in the shapes of tests/results/__init__.py's SAMPLES over 100 endpoints,
values varied around each endpoint's own latency, ids UUIDv7, timestamps with 9 fractional digits
as the agent writes them; ``--shape fleet``: bench/fleet.py's batch, the one bench/run.py measures):

1. validation: ``ingest._candidate`` over a batch, broken down (refuse_hostile walk, uuid parsing,
   timestamp parsing, check_columns, CheckResult construction), and the body's parse by
   ``StrictJSONParser``; against msgspec schemas (a Struct per check type, a tagged union on
   ``check_type.type``) used so that a bad item never fails the batch: the body is split into
   ``msgspec.Raw`` items and each is decoded alone (any refusal sends the whole batch to today's
   parser and ``_candidate``), or the parser's dicts are ``msgspec.convert``-ed one by one (an item
   refused takes ``_candidate``). The contract's codes and messages thus always come from today's
   code, so msgspec only has to accept nothing ``_candidate`` refuses, with the same fields: a
   differential check over the batches and a table of bad items runs first and prints any item
   where they disagree. Also: the parser's json.loads against msgspec's and orjson's decoders.
2. payload: ``storage._payload`` (with and without rollup shares) and its parts, against orjson of
   native UUID/datetime values, of lists instead of objects, and psycopg's client-side quoting of
   the payload into the statement (Django binds parameters client side).
3. insert (PostgreSQL): the current one-statement ``results_store`` against (a) psycopg executemany
   of ``INSERT ... ON CONFLICT (id) DO NOTHING RETURNING id`` (pipelined) plus one rollup statement
   for the rows it stored, (b) binary COPY into a temporary table, then the current statement
   reading that table, (c) the current statement with server-side binding (prepared after 5 runs),
   (d) the current statement fed a JSON array of arrays (jsonb_array_elements); each with the rollup
   tiers (``storage.TIERS``) and without; and the rest of results_ingest's database work: the agent
   lock by the ORM or raw SQL, the endpoint lookup by the ORM (``pk__in``) or one array parameter,
   and results_ingest whole (the in-run reference the summary's shares are of). Every batch is its
   own transaction shaped as ingestion's (BEGIN, the agent's row lock, the store, COMMIT), with
   fresh ids; variants run interleaved.
   Wall ms, this process's CPU and the PostgreSQL backend's CPU (``/proc/<pid>/schedstat``) per
   batch. Exactly once is checked for every variant first: a resent batch stores and adds nothing.

CPU parts time this thread's CPU (``time.thread_time_ns``) over all batches per case, rounds
interleaved with the case order rotated; the table shows the best round and the median one. The
machine is shared: the 1-minute load average and the busy share of all cores (ours included) are
printed per part. A throwaway database on $BENCH_POSTGRES_URL (default
postgres://postgres@127.0.0.1:5432) is created, migrated in-process and dropped at the end."""

from __future__ import annotations

import argparse
import gc
import io
import json
import math
import os
import random
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import fmean
from typing import Annotated

import msgspec
import orjson
from uuid6 import uuid7

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH = 100
# Items per batch by check type: a fleet that mostly pings and connects.
MIX = {"ping": 40, "tcpconnect": 20, "httpget": 20, "udpconnect": 8, "traceroute": 6, "plugin": 6}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="Timed rounds per part (default 7).")
    parser.add_argument("--batches", type=int, default=20, help="Batches per case and round (default 20).")
    parser.add_argument("--parts", default="validation,payload,insert", help="Which parts to run.")
    parser.add_argument(
        "--shape",
        choices=("mix", "fleet"),
        default="mix",
        help="mix: every check type over 100 endpoints (default); fleet: bench/fleet.py's batch (the "
        "same ping over 20 endpoints, one timestamp), the batch behind the issue's 9.8 ms.",
    )
    return parser.parse_args()


# ---------------------------------------------------------------------------------------------
# The machine: load, and the busy share of all cores while a part ran


def loadavg() -> float:
    return os.getloadavg()[0]


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot (/proc/stat)."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Machine:
    """Load and busy share over a stretch of the run (the machine is shared with other people)."""

    started: tuple[int, int] = field(default_factory=cpu_ticks)
    load_start: float = field(default_factory=loadavg)

    def note(self) -> str:
        busy, total = cpu_ticks()
        share = (busy - self.started[0]) / max(1, total - self.started[1])
        return f"loadavg {self.load_start:.2f} -> {loadavg():.2f}, all cores busy {share:.0%} (ours included)"


# ---------------------------------------------------------------------------------------------
# The database and the fleet


def create_database() -> tuple[str, str]:
    import psycopg

    base = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
    name = f"smotra_bench_paths_{secrets.token_hex(4)}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return base, name


def drop_database(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["SMOTRA_DATABASE_TYPE"] = "postgres"
    os.environ.setdefault("SMOTRA_LOG_LEVEL", "warn")
    os.environ["DJANGO_SETTINGS_MODULE"] = "smotra.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def build_fleet(shape: str):
    """One agent and the endpoints of its section, one check type per endpoint (as MIX says); the
    batch's endpoints in order (fleet: 20 endpoints, each 5 times)."""
    from agents.models import Agent
    from endpoints.models import Endpoint
    from tenants.models import Section, Tenant

    section = Section.objects.create(tenant=Tenant.objects.create(name="Bench"), name="fleet")
    agent = Agent.objects.create(id=uuid.uuid4(), section=section, name="agent-00", last_seen_at=datetime.now(UTC))
    types = [check_type for check_type, count in MIX.items() for _ in range(count)]
    if shape == "fleet":
        types = ["ping"] * 20
    endpoints = Endpoint.objects.bulk_create(
        [Endpoint(section=section, address=f"target-{n:03d}.example.net", port=443) for n in range(len(types))]
    )
    pairs = [(str(endpoint.pk), check_type) for endpoint, check_type in zip(endpoints, types, strict=True)]
    return agent, [pairs[n % len(pairs)] for n in range(BATCH)]


SHAPE = {"name": "mix"}
FLEET_PING = {"resolved_ip": "10.0.0.1", "successes": 3, "failures": 0, "success_latencies": [1.1, 1.2, 1.3]}
FLEET_PING["error_details"] = None


# ---------------------------------------------------------------------------------------------
# Realistic items: the SAMPLES shapes (tests/results/__init__.py), values varied


def _errors(rng: random.Random, text: str):
    return {"errors": [text]} if rng.random() < 0.2 else None


def _ms(rng: random.Random, base: float) -> float:
    """A latency around the endpoint's own base (log-normal jitter, as bench/readside.py's)."""
    return round(base * rng.lognormvariate(0, 0.15), 3)


# Each endpoint's base latency, 1-150 ms (log-uniform): its histograms fill a few buckets, not all.
BASES = [math.exp(random.Random(n).uniform(0, math.log(150))) for n in range(BATCH)]


def sample_result(check_type: str, rng: random.Random, base: float) -> dict:
    ip = f"192.0.2.{rng.randrange(1, 255)}"
    if check_type == "ping":
        latencies = [_ms(rng, base) for _ in range(rng.choice((3, 3, 3, 2)))]
        return {"resolved_ip": ip, "successes": len(latencies), "failures": 3 - len(latencies)} | {
            "success_latencies": latencies,
            "error_details": _errors(rng, "request timed out"),
        }
    if check_type == "tcpconnect":
        return {"resolved_ip": ip, "connected": True, "connect_time_ms": _ms(rng, base), "error_details": None}
    if check_type == "udpconnect":
        ok = rng.random() < 0.8
        return {
            "resolved_ip": "2001:db8::3",
            "probe_successful": ok,
            "response_time_ms": _ms(rng, base) if ok else None,
        } | {"error_details": None if ok else {"errors": ["no reply"]}}
    if check_type == "httpget":
        return {
            "status_code": rng.choice((200, 200, 200, 503)),
            "success": True,
            "response_time_ms": _ms(rng, base),
        } | {
            "response_size_bytes": rng.randrange(200, 50_000),
            "error_details": None,
        }
    if check_type == "traceroute":
        hops = [
            {
                "hop": n,
                "resolved_ip": f"10.0.{n}.1",
                "hostname": None,
                "success_latencies": [_ms(rng, base * n / 12), _ms(rng, base * n / 12)],
            }
            for n in range(1, rng.randrange(4, 12))
        ]
        hops[1] |= {"resolved_ip": None, "success_latencies": None}
        return {"target_reached": True, "hops": hops, "error_details": None}
    return {
        "plugin_name": "dns",
        "plugin_version": "0.3.1",
        "success": True,
        "response_time_ms": _ms(rng, base / 10),
    } | {
        "data": {"answer": ip, "rcode": "NOERROR"},
        "error_details": None,
    }


def batch_items(agent_id: str, endpoints: list[tuple[str, str]], start: datetime, rng: random.Random) -> list[dict]:
    """100 MonitoringResults as the agent sends them, oldest first, over the minute from ``start``
    (fleet shape: bench/fleet.py's, one fixed timestamp)."""
    if SHAPE["name"] == "fleet":
        return [
            {"id": str(uuid7()), "agent_id": agent_id, "endpoint_id": endpoint_id, "timestamp": "2026-11-26T12:00:00Z"}
            | {"check_type": {"type": "ping", "result": dict(FLEET_PING)}}
            for endpoint_id, _ in endpoints
        ]
    items = []
    for index, (endpoint_id, check_type) in enumerate(endpoints):
        moment = start + timedelta(milliseconds=index * 500)
        items.append(
            {
                "id": str(uuid7()),
                "agent_id": agent_id,
                "endpoint_id": endpoint_id,
                "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{rng.randrange(1000):03d}Z",
                "check_type": {"type": check_type, "result": sample_result(check_type, rng, BASES[index])},
            }
        )
    return items


@dataclass
class Batch:
    """A batch as the server receives it (the body) and as the parser hands it on (the items)."""

    body: bytes
    items: list
    kwargs: list = field(default_factory=list)  # CheckResult(**kwargs) per item, for the model stage


def parse_body(body: bytes) -> list:
    from smotra.api.parsers import StrictJSONParser

    return StrictJSONParser().parse(io.BytesIO(body))["results"]


def make_batches(agent, endpoints, count: int, rng: random.Random) -> list[Batch]:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=count + 5)
    batches = []
    for number in range(count):
        body = json.dumps({"results": batch_items(str(agent.pk), endpoints, start + number * MINUTE, rng)}).encode()
        batches.append(Batch(body, parse_body(body)))
    return batches


MINUTE = timedelta(minutes=1)


# ---------------------------------------------------------------------------------------------
# Interleaved CPU timing


def interleaved(cases: dict[str, Callable], inputs: list, rounds: int) -> dict[str, list[float]]:
    """µs of this thread's CPU per input, one figure per round for each case: every round runs each
    case over all ``inputs``, in an order rotated round by round (a first round is a warm-up)."""
    names, samples = list(cases), {name: [] for name in cases}
    for number in range(rounds + 1):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            case = cases[name]
            gc.collect()
            started = time.thread_time_ns()
            for value in inputs:
                case(value)
            elapsed = time.thread_time_ns() - started
            if number:
                samples[name].append(elapsed / 1000 / len(inputs))
    return samples


def best(values: list[float]) -> float:
    return min(values)


def spread(values: list[float]) -> str:
    low, mid = min(values), statistics.median(values)
    return f"{mid:9.1f} {100 * (max(values) - low) / low:5.0f}%"


# ---------------------------------------------------------------------------------------------
# Part 1: validation as it is, stage by stage


def stages(agent, now):
    """The cases of part 1 that measure the server's code: ingestion's loop as it is now
    (``_candidate``: results.typed_items, the plain checks only for what those refuse), the plain
    checks alone (``_checked_candidate``: every item, as before), then their stages one at a time
    (each with the path strings it builds)."""
    from django.conf import settings

    from results.checks import CHECKS, check_columns
    from results.models import CheckResult
    from results.services import ingest
    from smotra import validation as v
    from smotra.api.parsers import _finite_float, _refuse_constant
    from smotra.errors import DomainError

    def candidates(batch):
        out = []
        for index, item in enumerate(batch.items):
            try:  # noqa: SIM105 - results_ingest's own loop (suppress() would cost a context manager)
                out.append(ingest._checked_candidate(agent, index, item))
            except DomainError:
                pass
        return out

    def now_path(batch):
        out = []
        for index, item in enumerate(batch.items):
            try:  # noqa: SIM105 - as results_ingest's loop
                out.append(ingest._candidate(agent, index, item))
            except DomainError:
                pass
        return out

    def hostile(batch):
        for index, item in enumerate(batch.items):
            path = f"results[{index}]"
            v.refuse_hostile(item, path, known=("check_type.result",), prefix=f"{path}.")

    def uuids(batch):
        for index, item in enumerate(batch.items):
            path = f"results[{index}]"
            v.uuid_value(item, "id", f"{path}.id")
            v.uuid_value(item, "agent_id", f"{path}.agent_id")
            v.uuid_value(item, "endpoint_id", f"{path}.endpoint_id")

    def timestamps(batch):
        for index, item in enumerate(batch.items):
            v.timestamp(item, "timestamp", f"results[{index}].timestamp", required=True)

    def columns(batch):
        for index, item in enumerate(batch.items):
            path = f"results[{index}]"
            check = v.mapping(item, "check_type", f"{path}.check_type", required=True)
            check_type = check.get("type")
            if isinstance(check_type, str) and check_type in CHECKS:
                check_columns(check_type, check.get("result"), f"{path}.check_type.result")

    def models(batch):
        for kwargs in batch.kwargs:
            CheckResult(**kwargs)

    def rows(batch):
        for kwargs in batch.kwargs:
            Row(**kwargs)

    def parse(batch):
        parse_body(batch.body)

    def loads_plain(batch):
        json.loads(batch.body.decode())

    def loads_checked(batch):  # what the parser runs when _HUGE_NUMBER matches (an "e" + 3 digits in a UUID)
        json.loads(batch.body.decode(), parse_constant=_refuse_constant, parse_float=_finite_float)

    assert settings.SMOTRA.results.max_batch_items >= BATCH
    return candidates, {
        "StrictJSONParser.parse (body)": parse,
        "  json.loads(parse_float=_finite_float)": loads_checked,
        "  json.loads plain": loads_plain,
        "  msgspec.json.decode untyped": lambda batch: ANY.decode(batch.body),
        "  orjson.loads (big ints become floats!)": lambda batch: orjson.loads(batch.body),
        "ingestion now: _candidate x100 (typed, ResultRow)": now_path,
        "plain checks x100 (whole)": candidates,
        "  refuse_hostile walk": hostile,
        "  uuid_value x3": uuids,
        "  timestamp": timestamps,
        "  check_columns": columns,
        "  CheckResult(**fields)": models,
        "  instead: a slotted dataclass Row(**fields)": rows,
    }


@dataclass(slots=True)
class Row:
    """What the PostgreSQL path reads of a CheckResult (storage._payload, rollups.Cell.of, ingest):
    a candidate for ``_Candidate.result`` there, the model kept for SQLite's bulk_create."""

    id: uuid.UUID
    agent_id: uuid.UUID
    endpoint_id: uuid.UUID
    check_type: str
    checked_at: datetime
    received_at: datetime
    details: dict
    success: bool
    latency_ms: float | None = None
    packets_sent: int | None = None
    packets_received: int | None = None
    status_code: int | None = None
    resolved_ip: str = ""


def model_kwargs(result) -> dict:
    names = ["id", "agent_id", "endpoint_id", "check_type", "checked_at", "received_at", "details", "success"]
    names += ["latency_ms", "packets_sent", "packets_received", "status_code", "resolved_ip"]
    # A ResultRow has no agent_id/received_at (the batch's): None there, for CheckResult(**) timing.
    return {name: getattr(result, name, None) for name in names}


# ---------------------------------------------------------------------------------------------
# Part 1: the msgspec schema (contract §6.4), as strict as results/checks.py or stricter

Num = Annotated[float, msgspec.Meta(ge=0, le=1e15)]  # validation.number: ints pass as floats here
Packets = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]  # checks.MAX_PACKETS
Ip = Annotated[str, msgspec.Meta(max_length=64)]
Text = Annotated[str, msgspec.Meta(max_length=255)]
Latencies = Annotated[list[Num], msgspec.Meta(max_length=10_000)]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Closed objects: an unknown key (stored in ``details`` by today's code, and possibly
    hostile: deep, NUL) makes msgspec refuse the item, which then takes the exact path."""


class ErrorDetails(Strict):
    errors: Annotated[list[str], msgspec.Meta(max_length=1000)]


class Errors(Strict, kw_only=True):
    error_details: ErrorDetails | None = None
    error: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None


class PingResult(Errors):
    resolved_ip: Ip
    successes: Packets
    failures: Packets
    success_latencies: Latencies


class TcpResult(Errors):
    connected: bool
    resolved_ip: Ip | None = None
    connect_time_ms: Num | None = None


class UdpResult(Errors):
    probe_successful: bool
    resolved_ip: Ip | None = None
    response_time_ms: Num | None = None


class HttpResult(Errors):
    status_code: Annotated[int, msgspec.Meta(ge=0, le=999)]
    success: bool
    response_time_ms: Num | None = None
    response_size_bytes: Annotated[int, msgspec.Meta(ge=0, le=10**15)] | None = None


class Hop(Strict):
    hop: Annotated[int, msgspec.Meta(ge=0, le=255)]
    resolved_ip: Ip | None = None
    hostname: Text | None = None
    success_latencies: Latencies | None = None


class TracerouteResult(Errors):
    target_reached: bool
    hops: Annotated[list[Hop], msgspec.Meta(max_length=255)]


class PluginResult(Errors):
    plugin_name: Text
    plugin_version: Text
    success: bool
    data: Annotated[dict[str, Annotated[str, msgspec.Meta(max_length=10_000)]], msgspec.Meta(max_length=1000)]
    response_time_ms: Num | None = None


class Ping(Strict, tag_field="type", tag="ping"):
    result: PingResult


class Tcp(Strict, tag_field="type", tag="tcpconnect"):
    result: TcpResult


class Udp(Strict, tag_field="type", tag="udpconnect"):
    result: UdpResult


class Http(Strict, tag_field="type", tag="httpget"):
    result: HttpResult


class Traceroute(Strict, tag_field="type", tag="traceroute"):
    result: TracerouteResult


class Plugin(Strict, tag_field="type", tag="plugin"):
    result: PluginResult


class Item(Strict):
    id: uuid.UUID
    agent_id: uuid.UUID
    endpoint_id: uuid.UUID
    # A string: msgspec rounds 9 fractional digits to the microsecond, datetime.fromisoformat
    # truncates (what is stored today); rounding could even move a result into the next minute.
    timestamp: Annotated[str, msgspec.Meta(max_length=40)]
    check_type: Ping | Tcp | Udp | Http | Traceroute | Plugin


class RawBatch(msgspec.Struct):
    results: list[msgspec.Raw]


class TypedBatch(msgspec.Struct):
    results: list[Item]


ITEM = msgspec.json.Decoder(Item)
RAW_BATCH = msgspec.json.Decoder(RawBatch)
TYPED_BATCH = msgspec.json.Decoder(TypedBatch)
ANY = msgspec.json.Decoder()


def _mean_or_none(values):
    return fmean(values) if values else None


def _columns_ping(r: PingResult) -> dict:
    return {
        "success": r.successes > 0,
        "resolved_ip": r.resolved_ip,
        "latency_ms": _mean_or_none(r.success_latencies),
        "packets_sent": r.successes + r.failures,
        "packets_received": r.successes,
    }


def _columns_traceroute(r: TracerouteResult) -> dict:
    last = (r.hops[-1].success_latencies or []) if r.hops else []
    return {
        "success": r.target_reached,
        "resolved_ip": "",
        "latency_ms": _mean_or_none(last) if r.target_reached else None,
    }


MS_COLUMNS = {
    "ping": _columns_ping,
    "tcpconnect": lambda r: {
        "success": r.connected,
        "resolved_ip": r.resolved_ip or "",
        "latency_ms": r.connect_time_ms,
    },
    "udpconnect": lambda r: {
        "success": r.probe_successful,
        "resolved_ip": r.resolved_ip or "",
        "latency_ms": r.response_time_ms,
    },
    "httpget": lambda r: {
        "success": r.success,
        "status_code": r.status_code,
        "resolved_ip": "",
        "latency_ms": r.response_time_ms,
    },
    "traceroute": _columns_traceroute,
    "plugin": lambda r: {"success": r.success, "resolved_ip": "", "latency_ms": r.response_time_ms},
}


class Fallback(Exception):
    """msgspec (or the timestamp) refused the item: today's code says why, with its code and message."""


def _checked_at(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            raise Fallback
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise Fallback from None


def msgspec_fields(agent_id, typed: Item, result: dict, now) -> dict:
    """The CheckResult fields of an item msgspec accepted; ``result`` is the item's
    ``check_type.result`` as plain JSON values (its ``details`` are those, as today)."""
    check_type = typed.check_type.__struct_config__.tag
    if typed.agent_id != agent_id:
        raise Fallback
    keys = COLUMN_KEYS[check_type]
    return {
        "id": typed.id,
        "agent_id": agent_id,
        "endpoint_id": typed.endpoint_id,
        "check_type": check_type,
        "checked_at": _checked_at(typed.timestamp),
        "received_at": now,
        "details": {key: value for key, value in result.items() if key not in keys},
        **MS_COLUMNS[check_type](typed.check_type.result),
    }


COLUMN_KEYS: dict = {}  # results.checks.COLUMN_KEYS, once Django is set up


def msgspec_paths(agent, now, exact: Callable) -> dict[str, Callable]:
    """The msgspec cases of part 1. ``exact(index, item)`` is today's ``_candidate``.

    Decoding the body's bytes (Raw split): any item msgspec refuses, a ``\\u`` escape anywhere
    (JSON can only carry a NUL or a lone surrogate that way; refuse_hostile's walk is what finds
    NULs today), or a body msgspec cannot read (NaN, a float past the range, bad UTF-8: today's
    parser refuses the whole request) sends the whole batch to today's parser and ``_candidate``:
    the same answer as today, at the cost of both for such a batch. Converting the parser's dicts:
    an item msgspec refuses takes ``_candidate`` alone (the parser has run anyway)."""
    from results.models import CheckResult

    agent_id = agent.pk

    def today(batch):
        return [exact(index, item) for index, item in enumerate(parse_body(batch.body))]

    def from_raw(batch, *, model: bool, exact_details: bool = True):
        body = batch.body
        if b"\\u" in body:
            return today(batch)
        out = []
        try:
            for raw in RAW_BATCH.decode(body).results:
                typed = ITEM.decode(raw)
                result = ANY.decode(raw)["check_type"]["result"] if exact_details else _builtins(typed)
                fields = msgspec_fields(agent_id, typed, result, now)
                out.append(CheckResult(**fields) if model else fields)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, Fallback):
            return today(batch)
        return out

    def from_dicts(batch, *, model: bool):
        if b"\\u" in batch.body:  # the parser's text, in the server
            return [exact(index, item) for index, item in enumerate(batch.items)]
        out = []
        for index, item in enumerate(batch.items):
            try:
                fields = msgspec_fields(agent_id, msgspec.convert(item, Item), item["check_type"]["result"], now)
                out.append(CheckResult(**fields) if model else fields)
            except (msgspec.ValidationError, Fallback):
                out.append(exact(index, item))
        return out

    def whole(batch):
        try:
            typed = TYPED_BATCH.decode(batch.body).results
        except (msgspec.ValidationError, msgspec.DecodeError):
            return from_raw(batch, model=False)
        return [msgspec_fields(agent_id, item, _builtins(item), now) for item in typed]

    return {
        "msgspec Raw split, item typed + untyped": lambda batch: from_raw(batch, model=False),
        "  Raw + CheckResult(**fields)": lambda batch: from_raw(batch, model=True),
        "  details from to_builtins (absent!=null)": lambda batch: from_raw(batch, model=False, exact_details=False),
        "msgspec.convert(parser's dict) per item": lambda batch: from_dicts(batch, model=False),
        "  convert + CheckResult(**fields)": lambda batch: from_dicts(batch, model=True),
        "msgspec whole batch typed (no per-item)": whole,
    }


def _builtins(typed: Item) -> dict:
    return msgspec.to_builtins(typed.check_type.result)


# ---------------------------------------------------------------------------------------------
# Part 1: do msgspec and today's code agree? (msgspec must accept nothing today's code refuses)


def mutations(item: dict) -> dict[str, dict]:
    """Bad or odd variants of a valid ping/tcp item, by name."""
    import copy

    def changed(path: str, value, base=item):
        new = copy.deepcopy(base)
        *parents, last = path.split(".")
        node = new
        for key in parents:
            node = node[key] if not key.isdigit() else node[int(key)]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
        return new

    deep: dict = {}
    for _ in range(70):
        deep = {"x": deep}
    r = "check_type.result"
    return {
        "negative latency": changed(f"{r}.success_latencies", [-1.0]),
        "bool latency": changed(f"{r}.success_latencies", [True]),
        "float successes": changed(f"{r}.successes", 2.0),
        "packets past 1e9": changed(f"{r}.successes", 10**10),
        "latency past 1e15": changed(f"{r}.success_latencies", [1e16]),
        "resolved_ip 65 chars": changed(f"{r}.resolved_ip", "1" * 65),
        "ping without resolved_ip": changed(f"{r}.resolved_ip", _DELETE),
        "ping resolved_ip null": changed(f"{r}.resolved_ip", None),
        "error_details a string": changed(f"{r}.error_details", "boom"),
        "error_details.errors [1]": changed(f"{r}.error_details", {"errors": [1]}),
        "error_details extra key": changed(f"{r}.error_details", {"errors": [], "more": 1}),
        "old agent error string": changed(f"{r}.error", "timeout"),
        "error_details absent": changed(f"{r}.error_details", _DELETE),
        "extra key in result": changed(f"{r}.extra", 1),
        "deep extra key in result": changed(f"{r}.extra", deep),
        "deep extra top-level key": changed("extra", deep),
        "NUL in resolved_ip": changed(f"{r}.resolved_ip", "1\x00"),
        "NUL in an extra key's name": changed(f"{r}.a\x00", 1),
        "unknown type": changed("check_type.type", "ping_x"),
        "type missing": changed("check_type.type", _DELETE),
        "result missing": changed("check_type.result", _DELETE),
        "result a list": changed("check_type.result", []),
        "timestamp without zone": changed("timestamp", "2025-06-01T12:00:00"),
        "timestamp +02:00": changed("timestamp", "2025-06-01T12:00:00.5+02:00"),
        "timestamp 41 chars": changed("timestamp", "2025-06-01T12:00:00." + "1" * 20 + "Z"),
        "timestamp year 1 -01:00 (overflow)": changed("timestamp", "0001-01-01T00:00:00+01:00"),
        "timestamp a number": changed("timestamp", 1),
        "timestamp space separator": changed("timestamp", "2025-06-01 12:00:00Z"),
        "id upper case": changed("id", item["id"].upper()),
        "id braces": changed("id", "{" + item["id"] + "}"),
        "id 32 hex": changed("id", item["id"].replace("-", "")),
        "id not a uuid": changed("id", "nope"),
        "agent_id another agent": changed("agent_id", str(uuid.uuid4())),
        "endpoint_id missing": changed("endpoint_id", _DELETE),
        "item a list": [],
    }


_DELETE = object()


def trace_mutations(item: dict) -> dict[str, dict]:
    """Bad variants of a traceroute and a plugin item."""
    import copy

    out = {}
    r = item["check_type"]["result"]
    for name, result in {
        "256 hops": r | {"hops": [{"hop": 1}] * 256},
        "hop 256": r | {"hops": [{"hop": 256}]},
        "hop without number": r | {"hops": [{"resolved_ip": None}]},
        "hop extra key": r | {"hops": [{"hop": 1, "rtt": 1}]},
        "hop hostname 256 chars": r | {"hops": [{"hop": 1, "hostname": "h" * 256}]},
        "hops empty, reached": r | {"hops": []},
        "hops a dict": r | {"hops": {}},
    }.items():
        new = copy.deepcopy(item)
        new["check_type"]["result"] = result
        out[name] = new
    return out


def plugin_mutations(item: dict) -> dict[str, dict]:
    import copy

    out = {}
    r = item["check_type"]["result"]
    for name, result in {
        "data value an int": r | {"data": {"a": 1}},
        "data 1001 entries": r | {"data": {str(n): "" for n in range(1001)}},
        "data value 10001 chars": r | {"data": {"a": "x" * 10_001}},
        "data missing": {key: value for key, value in r.items() if key != "data"},
        "plugin_name null": r | {"plugin_name": None},
        "status-like extra": r | {"status_code": 200},
    }.items():
        new = copy.deepcopy(item)
        new["check_type"]["result"] = result
        out[name] = new
    return out


def comparable(result) -> dict:
    """A CheckResult's fields; latency as a float (a float8 column either way: msgspec makes 2 of 2.0)."""
    fields = model_kwargs(result)
    fields["latency_ms"] = None if fields["latency_ms"] is None else float(fields["latency_ms"])
    return fields


def compare(agent, batches, now) -> list[str]:
    """Where msgspec and ``_candidate`` disagree: a problem when msgspec accepts an item that
    ``_candidate`` refuses, or accepts it with other fields. (msgspec refusing an item that
    ``_candidate`` accepts only costs that item the slow path.) Returns lines to print."""
    from results.models import CheckResult
    from results.services import ingest
    from smotra.errors import DomainError

    def today(item):
        try:
            return comparable(ingest._checked_candidate(agent, 0, item).result)
        except DomainError as exc:
            return exc.code

    def fast(item):
        raw = json.dumps(item).encode()
        if b"\\u" in raw:
            return "fallback (escape)"
        try:
            fields = msgspec_fields(agent.pk, ITEM.decode(raw), ANY.decode(raw)["check_type"]["result"], now)
            return comparable(CheckResult(**fields))
        except (msgspec.ValidationError, msgspec.DecodeError, Fallback):
            return "fallback"

    problems, fallbacks, checked = [], [], 0
    cases = {f"batch item {n}": item for n, item in enumerate(item for batch in batches for item in batch.items)}
    first, rng = batches[0].items[0], random.Random(1)
    by_type = {t: first | {"check_type": {"type": t, "result": sample_result(t, rng, 10.0)}} for t in MIX}
    cases |= mutations(by_type["ping"]) | trace_mutations(by_type["traceroute"]) | plugin_mutations(by_type["plugin"])
    cases |= {f"tcp {k}": v for k, v in mutations(by_type["tcpconnect"]).items() if "ping" not in k}
    for name, item in cases.items():
        expected, got = today(item), fast(item)
        checked += 1
        if isinstance(got, str):
            fallbacks.append(f"{name} ({'accepted' if isinstance(expected, dict) else expected} today)")
        elif not isinstance(expected, dict):
            problems.append(f"MISMATCH {name}: msgspec accepts, today refuses with {expected}")
        elif orjson.dumps(got, option=orjson.OPT_SORT_KEYS) != orjson.dumps(expected, option=orjson.OPT_SORT_KEYS):
            problems.append(f"MISMATCH {name}: fields differ: {got} != {expected}")
    lines = [f"{checked} items compared ({sum(len(b.items) for b in batches)} valid batch items + bad ones)"]
    lines += [f"  takes the exact path: {', '.join(fallbacks)}"]
    return lines + [f"  {problem}" for problem in problems] + (["  no disagreement"] if not problems else [])


# ---------------------------------------------------------------------------------------------
# Part 3: the statement's payload


def payload_cases() -> dict[str, Callable]:
    from django.db import connection

    from results import storage
    from results.histogram import histogram_encode
    from results.rollups import Cell

    def shares(results):
        return [Cell.of(result) for result in results]

    def histograms(results):
        return [histogram_encode(Cell.of(result).histogram).hex() for result in results]

    def dicts_native(results):  # json_to_recordset reads UUIDs and ISO times as orjson writes them
        rows = []
        for result in results:
            share = Cell.of(result)
            rows.append(
                {
                    "id": result.id,
                    "endpoint_id": result.endpoint_id,
                    "check_type": result.check_type,
                    "success": result.success,
                    "checked_at": result.checked_at,
                    "latency_ms": result.latency_ms,
                    "packets_sent": result.packets_sent,
                    "packets_received": result.packets_received,
                    "status_code": result.status_code,
                    "resolved_ip": result.resolved_ip,
                    "details": result.details,
                    "samples": share.latency_count,
                    "sample_sum": share.latency_sum,
                    "sample_min": share.latency_min,
                    "sample_max": share.latency_max,
                    "histogram": histogram_encode(share.histogram).hex(),
                }
            )
        return orjson.dumps(rows).decode()

    def quoting(results):
        with connection.cursor() as cursor:  # Django's cursor binds client side: the payload is quoted
            cursor.cursor.mogrify(storage._statement(storage.TIERS), [storage._payload(results, shares=True), "x", "y"])

    return {
        "_payload(shares=True) (rollups on)": lambda results: storage._payload(results, shares=True),
        "_payload(shares=False) (rollups off)": lambda results: storage._payload(results, shares=False),
        "  Cell.of x100": shares,
        "  Cell.of + histogram_encode().hex() x100": histograms,
        "dicts, native UUID/datetime, orjson": dicts_native,
        "lists, native UUID/datetime, orjson": lambda results: array_payload(results, shares=True),
        "lists, no shares (rollups off)": lambda results: array_payload(results, shares=False),
        "copy_rows() tuples (for COPY)": lambda results: copy_rows(results, shares=True),
        "_payload + client-side quoting (mogrify)": quoting,
    }


def array_payload(results, *, shares: bool) -> str:
    from results.histogram import histogram_encode
    from results.rollups import Cell

    rows = []
    for result in results:
        share = Cell.of(result) if shares else NO_SHARE
        rows.append(
            (
                result.id,
                result.endpoint_id,
                result.check_type,
                result.success,
                result.checked_at,
                result.latency_ms,
                result.packets_sent,
                result.packets_received,
                result.status_code,
                result.resolved_ip,
                result.details,
                share.latency_count,
                share.latency_sum,
                share.latency_min,
                share.latency_max,
                histogram_encode(share.histogram).hex(),
            )
        )
    return orjson.dumps(rows).decode()


def copy_rows(results, *, shares: bool) -> list[tuple]:
    """The rows for COPY, in storage._FIELDS order (details left to psycopg's jsonb dumper)."""
    from psycopg.types.json import Jsonb

    from results.histogram import histogram_encode
    from results.rollups import Cell

    rows = []
    for result in results:
        share = Cell.of(result) if shares else NO_SHARE
        rows.append(
            (
                result.id,
                result.endpoint_id,
                result.check_type,
                result.success,
                result.checked_at,
                result.latency_ms,
                result.packets_sent,
                result.packets_received,
                result.status_code,
                result.resolved_ip,
                Jsonb(result.details, dumps=orjson.dumps),
                share.latency_count,
                share.latency_sum,
                share.latency_min,
                share.latency_max,
                histogram_encode(share.histogram).hex(),
            )
        )
    return rows


class _NoShare:
    latency_count, latency_sum, latency_min, latency_max, histogram = 0, 0.0, None, None, {}


NO_SHARE = _NoShare()


# ---------------------------------------------------------------------------------------------
# Part 2: insert variants on PostgreSQL (each stores a batch and names the ids it stored)

INCOMING = "bench_incoming"
COPY_TYPES = ["uuid", "uuid", "text", "bool", "timestamptz", "float8", "int4", "int4", "int4", "text", "jsonb"]
COPY_TYPES += ["int4", "float8", "float8", "float8", "text"]


def sql_pieces():
    """The statements of the variants, derived from storage's own (so the rest stays identical)."""
    from results import storage
    from results.models import RollupSeries

    source = f"SELECT * FROM json_to_recordset(%s::json) AS x({storage._FIELDS})"
    current = {tiers: storage._statement(tiers) for tiers in (storage.TIERS, ())}
    for statement in current.values():
        assert source in statement, "results.storage._statement changed: update bench/ingest_paths.py"
    names = [column.split()[0] for column in storage._FIELDS.split(", ")]
    types = [column.split()[1] for column in storage._FIELDS.split(", ")]
    elements = ", ".join(
        f"(r->{n})::jsonb AS {name}" if kind == "jsonb" else f"(r->>{n})::{kind} AS {name}"
        for n, (name, kind) in enumerate(zip(names, types, strict=True))
    )
    arrays = f"SELECT {elements} FROM jsonb_array_elements(%s::jsonb) AS r"
    raw = ", ".join(storage._RAW)
    series = RollupSeries._meta.db_table
    rollups = [
        f"fresh AS (SELECT x.*, %s::uuid AS agent_id FROM json_to_recordset(%s::json) AS x({storage._FIELDS}))",
        "wanted AS (SELECT DISTINCT endpoint_id, agent_id, check_type FROM fresh)",
        f"created AS (INSERT INTO {series} (endpoint_id, agent_id, check_type) "
        "SELECT * FROM wanted ORDER BY 1, 3 ON CONFLICT DO NOTHING RETURNING id, endpoint_id, agent_id, check_type)",
        f"series AS (SELECT s.id, s.endpoint_id, s.agent_id, s.check_type FROM {series} s "
        "JOIN wanted USING (endpoint_id, agent_id, check_type) UNION ALL SELECT * FROM created)",
        "shares AS (SELECT series.id AS series_id, fresh.* FROM fresh "
        "JOIN series USING (endpoint_id, agent_id, check_type))",
    ]
    rollups += [f"{unit} AS ({storage._tier_upsert(model._meta.db_table, unit)})" for model, unit in storage.TIERS]
    return {
        "current": current,
        "copy": {tiers: sql.replace(source, f"SELECT * FROM {INCOMING}") for tiers, sql in current.items()},
        "arrays": {tiers: sql.replace(source, arrays) for tiers, sql in current.items()},
        "insert_one": f"INSERT INTO results_checkresult (agent_id, received_at, {raw}) "
        f"VALUES ({', '.join(['%s'] * (len(storage._RAW) + 2))}) ON CONFLICT (id) DO NOTHING RETURNING id",
        "rollups": f"WITH {', '.join(rollups)} SELECT (SELECT count(*) FROM fresh) - (SELECT count(*) FROM shares)",
        "temp_table": f"CREATE TEMP TABLE IF NOT EXISTS {INCOMING} ({storage._FIELDS}) ON COMMIT DELETE ROWS",
    }


def insert_variants(agent, rollups: bool):
    """name -> (store(results) -> stored ids, round trips of the store). Run inside the batch's
    transaction after the agent's row lock, as results_store is."""
    from unittest import mock

    import psycopg
    from django.db import connection

    from results import storage

    sql = sql_pieces()
    tiers = storage.TIERS if rollups else ()
    agent_id, shares = str(agent.pk), bool(tiers)

    def checked(rows) -> set:
        if rows and rows[0][1]:
            raise storage.RollupSeriesMissing(rows[0][1])
        return {row[0] for row in rows}

    def current(results, received_at):
        with mock.patch.object(storage, "TIERS", tiers):
            return storage.results_store(results, agent_id=agent.pk, received_at=received_at)

    def server_bound(results, received_at):
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql["current"][tiers], [storage._payload(results, shares=shares), agent_id, received_at])
            return checked(cursor.fetchall())

    def arrays(results, received_at):
        with connection.cursor() as cursor:
            cursor.execute(sql["arrays"][tiers], [array_payload(results, shares=shares), agent_id, received_at])
            return checked(cursor.fetchall())

    def copy(results, received_at):
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {INCOMING} FROM STDIN (FORMAT BINARY)") as copier:
                copier.set_types(COPY_TYPES)
                for row in copy_rows(results, shares=shares):
                    copier.write_row(row)
            cursor.execute(sql["copy"][tiers], [agent_id, received_at])
            return checked(cursor.fetchall())

    def executemany(results, received_at):
        rows = [executemany_row(result, agent.pk, received_at) for result in results]
        stored = set()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.executemany(sql["insert_one"], rows, returning=True)
            while True:
                stored.update(row[0] for row in cursor.fetchall())
                if not cursor.nextset():
                    break
            fresh = [result for result in results if result.id in stored]
            if tiers and fresh:
                cursor.execute(sql["rollups"], [agent_id, storage._payload(fresh, shares=True)])
                if cursor.fetchone()[0]:
                    raise storage.RollupSeriesMissing("executemany")
        return stored

    # Round trips of the store alone (BEGIN, the lock and COMMIT are 3 more in every variant).
    return {
        "current: json_to_recordset, 1 statement": (current, "1"),
        "current SQL, server-side binding": (server_bound, "1"),
        "jsonb_array_elements (list payload)": (arrays, "1"),
        "COPY binary -> temp, INSERT..SELECT": (copy, "3"),
        "executemany INSERT (pipeline)" + (" + rollups" if tiers else ""): (executemany, "1+1" if tiers else "1"),
    }


def executemany_row(result, agent_id, received_at) -> tuple:
    from psycopg.types.json import Jsonb

    return (
        agent_id,
        received_at,
        result.id,
        result.endpoint_id,
        result.check_type,
        result.success,
        result.checked_at,
        result.latency_ms,
        result.packets_sent,
        result.packets_received,
        result.status_code,
        result.resolved_ip,
        Jsonb(result.details, dumps=orjson.dumps),
    )


def backend_cpu_ns(pid: int) -> int:
    """The PostgreSQL backend's time on a CPU so far (it runs on this machine)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


@dataclass
class Sample:
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    backend_ms: list[float] = field(default_factory=list)


class Inserts:
    """Runs batches through the store variants, each batch its own transaction like ingestion's."""

    def __init__(self, agent, endpoints, rng):
        from django.db import connection

        self.agent, self.endpoints, self.rng = agent, endpoints, rng
        self.clock = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
        with connection.cursor() as cursor:
            cursor.execute(sql_pieces()["temp_table"])
            cursor.execute("SELECT pg_backend_pid()")
            self.pid = cursor.fetchone()[0]
        self.with_rollups = 0  # results stored by variants that maintain rollups

    def batch(self):
        """A fresh batch (new ids, the next minute): its items, and its results validated as
        ingestion does (outside the timing)."""
        from results.services import ingest

        self.clock += MINUTE
        now = datetime.now(UTC)
        items = batch_items(str(self.agent.pk), self.endpoints, self.clock, self.rng)
        return (
            items,
            [ingest._checked_candidate(self.agent, index, item).result for index, item in enumerate(items)],
            now,
        )

    def stored(self, store, items, results, received_at) -> int:
        """How many results of the batch ``store`` stored: in a transaction shaped as ingestion's,
        or, for SERVICE, through results_ingest itself."""
        from django.db import transaction

        from results.services import ingest

        if store is SERVICE:
            return ingest.results_ingest(agent=self.agent, items=items).accepted
        with transaction.atomic():
            if store is RAW_LOCK:
                raw_lock(self.agent)
                return 0
            ingest._lock_agent(self.agent)
            return len(store(results, received_at)) if store else 0

    def one(self, store, sample: Sample, rollups: bool, expect: bool = True) -> None:
        items, results, received_at = self.batch()
        gc.collect()
        backend = backend_cpu_ns(self.pid)
        cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
        stored = self.stored(store, items, results, received_at)
        wall, cpu = time.perf_counter_ns() - wall, time.thread_time_ns() - cpu
        sample.backend_ms.append((backend_cpu_ns(self.pid) - backend) / 1e6)
        sample.wall_ms.append(wall / 1e6)
        sample.cpu_ms.append(cpu / 1e6)
        assert not expect or stored == len(results), (stored, len(results))
        self.with_rollups += stored if rollups else 0

    def exactly_once(self, name, store, rollups: bool) -> str:
        """A batch, then the same batch again: the resend must store nothing and add nothing."""
        items, results, received_at = self.batch()
        first = self.stored(store, items, results, received_at)
        before = rollup_totals()
        again = self.stored(store, items, results, received_at)
        assert first == len(results) and not again, f"{name}: stored {first} then {again}"
        assert rollup_totals() == before, f"{name}: a resend changed the rollups"
        self.with_rollups += first if rollups else 0
        return name


def RAW_LOCK():
    """The transaction shell with the agent's row locked by a raw statement instead of the ORM."""


def raw_lock(agent) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM agents_agent WHERE id = %s FOR NO KEY UPDATE", [agent.pk])
        cursor.fetchall()


def endpoints_orm(results, _received_at) -> set:
    """_known_endpoints_only's query."""
    from endpoints.models import Endpoint

    ids = {result.endpoint_id for result in results}
    dict(Endpoint.objects.filter(pk__in=ids).values_list("pk", "section_id"))
    return set()


def endpoints_raw(results, _received_at) -> set:
    from django.db import connection

    from endpoints.models import Endpoint

    with connection.cursor() as cursor:
        sql = f"SELECT id, section_id FROM {Endpoint._meta.db_table} WHERE id = ANY(%s)"
        cursor.execute(sql, [list({result.endpoint_id for result in results})])
        dict(cursor.fetchall())
    return set()


def explain_plans(inserts, repeats: int = 3) -> list[str]:
    """Planning and execution time (PostgreSQL's own, EXPLAIN ANALYZE) of the with-rollups store
    statements, best of ``repeats`` fresh batches, each rolled back."""
    from django.db import connection, transaction

    from results import storage

    sql, agent_id, lines = sql_pieces(), str(inserts.agent.pk), []
    cases = {
        "current (json_to_recordset)": lambda rs: (sql["current"][storage.TIERS], [storage._payload(rs, shares=True)]),
        "jsonb_array_elements": lambda rs: (sql["arrays"][storage.TIERS], [array_payload(rs, shares=True)]),
        "COPY temp table + INSERT..SELECT": lambda rs: (sql["copy"][storage.TIERS], []),
    }
    for name, make in cases.items():
        timings = []
        for _ in range(repeats):
            _items, results, received_at = inserts.batch()
            statement, params = make(results)
            with transaction.atomic(), connection.cursor() as cursor:
                if name.startswith("COPY"):
                    with cursor.cursor.copy(f"COPY {INCOMING} FROM STDIN (FORMAT BINARY)") as copier:
                        copier.set_types(COPY_TYPES)
                        for row in copy_rows(results, shares=True):
                            copier.write_row(row)
                cursor.execute(
                    "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + statement, [*params, agent_id, received_at]
                )
                plan = cursor.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                timings.append((plan[0]["Planning Time"], plan[0]["Execution Time"]))
                transaction.set_rollback(True)
        planning, execution = min(t[0] for t in timings), min(t[1] for t in timings)
        lines.append(f"EXPLAIN ANALYZE {name} [rollups]: planning {planning:.2f} ms, execution {execution:.2f} ms")
    return lines


def SERVICE():
    """results_ingest itself: validation, the endpoint lookup, the lock, the store, agent_seen."""


def rollup_totals() -> tuple[int, int, int]:
    from django.db.models import Sum

    from results.models import DayRollup, HourRollup, MinuteRollup

    return tuple(
        model.objects.aggregate(total=Sum("check_count"))["total"] or 0
        for model in (MinuteRollup, HourRollup, DayRollup)
    )


def measure_inserts(agent, endpoints, rounds: int, batches: int, rng) -> tuple[dict, dict, list[str]]:
    inserts = Inserts(agent, endpoints, rng)
    variants = {
        "results_ingest() whole service (validation included) [rollups]": (SERVICE, "5", True),
        "transaction only (BEGIN, lock, COMMIT)": (None, "0", False),
        "transaction only, lock by raw SQL instead of the ORM": (RAW_LOCK, "0", False),
        "transaction + endpoint lookup by the ORM (as ingest)": (endpoints_orm, "1", False),
        "transaction + endpoint lookup by raw SQL (= ANY(%s))": (endpoints_raw, "1", False),
    }
    shells = set(variants) - {next(iter(variants))}
    for rollups in (True, False):
        for name, (store, trips) in insert_variants(agent, rollups).items():
            variants[f"{name} [{'rollups' if rollups else 'no rollups'}]"] = (store, trips, rollups)
    checks = [
        inserts.exactly_once(name, store, rollups)
        for name, (store, _, rollups) in variants.items()
        if name not in shells
    ]
    samples = {name: [] for name in variants}
    names = list(variants)
    for number in range(rounds + 1):  # the first round warms up (series, plans, caches)
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            store, _trips, rollups = variants[name]
            sample = Sample()
            for _ in range(batches):
                inserts.one(store, sample, rollups, expect=name not in shells)
            if number:
                samples[name].append(sample)
    totals = rollup_totals()
    assert totals == (inserts.with_rollups,) * 3, (totals, inserts.with_rollups)
    notes = [f"exactly once (resend stores and adds nothing) checked for {len(checks)} variants"]
    notes.append(f"rollup totals match the results stored with rollups: {totals[0]} in every tier")
    notes += explain_plans(inserts)
    return samples, {name: trips for name, (_, trips, _) in variants.items()}, notes


# ---------------------------------------------------------------------------------------------
# Report


def cpu_table(title: str, samples: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    print(f"  {'case (per batch of 100)':48} {'best µs':>9} {'median':>9} {'spread':>6} {'µs/item':>8}")
    for name, values in samples.items():
        low = best(values)
        print(f"  {name:48} {low:9.1f} {spread(values)} {low / BATCH:8.2f}")


def insert_table(samples: dict[str, list[Sample]], trips: dict[str, str]) -> None:
    print("\nPart 2: store one batch of 100 on PostgreSQL (a transaction each: BEGIN, agent lock, store, COMMIT)")
    print("  trips: the store's round trips (BEGIN, the lock and COMMIT are 3 more); results_ingest: all of its own")
    print(f"  {'variant':64} {'trips':>5} {'wall ms best/med':>17} {'spread':>6} {'p50':>6}", end="")
    print(f" {'our CPU ms b/m':>14} {'PG CPU ms b/m':>14}")
    for name, rounds in samples.items():
        walls = [fmean(sample.wall_ms) for sample in rounds]
        cpus = [fmean(sample.cpu_ms) for sample in rounds]
        backends = [fmean(sample.backend_ms) for sample in rounds]
        p50 = statistics.median([value for sample in rounds for value in sample.wall_ms])
        low = min(walls)
        print(
            f"  {name:64} {trips[name]:>5} {low:8.2f}/{statistics.median(walls):<8.2f}"
            f"{100 * (max(walls) - low) / low:5.0f}% {p50:6.2f} {_pair(cpus)} {_pair(backends)}"
        )


def _pair(values: list[float]) -> str:
    return f"{min(values):6.2f}/{statistics.median(values):<6.2f}" + " "


def derived(samples: dict[str, list[float]]) -> None:
    """The breakdown's remainder, and the parse plus validation of a batch before (the plain checks
    building CheckResult instances) and now (best rounds; "before" is a sum of parts measured here:
    the plain checks, which now build ResultRows, with CheckResult's construction in place of a row's)."""
    b = {name.strip(): best(values) for name, values in samples.items()}
    plain = b["plain checks x100 (whole)"]
    parts = [
        "refuse_hostile walk",
        "uuid_value x3",
        "timestamp",
        "check_columns",
        "instead: a slotted dataclass Row(**fields)",
    ]
    print(f"  {'  rest (paths, agent check, _Candidate, try)':48} {plain - sum(b[name] for name in parts):9.1f}")
    parse = b["StrictJSONParser.parse (body)"]
    before = parse + plain - b["instead: a slotted dataclass Row(**fields)"] + b["CheckResult(**fields)"]
    options = {
        "plain checks, ResultRow (every item the slow way)": parse + plain,
        "now: msgspec.convert per item, ResultRow (ingestion)": parse
        + b["ingestion now: _candidate x100 (typed, ResultRow)"],
        "  and the parser on msgspec.json.decode (not done)": parse
        - b["json.loads(parse_float=_finite_float)"]
        + b["msgspec.json.decode untyped"]
        + b["ingestion now: _candidate x100 (typed, ResultRow)"],
        "  or msgspec Raw split + typed + untyped (not done)": b["msgspec Raw split, item typed + untyped"]
        + b["instead: a slotted dataclass Row(**fields)"],
    }
    print(f"\n  before, parse + plain checks + CheckResult x100: {before:.0f} µs per batch; instead:")
    for name, cost in options.items():
        saving = before - cost
        print(f"  {name:62} {cost:6.0f} µs, saves {saving:5.0f} µs ({100 * saving / before:3.0f}% of it)")


def main() -> None:
    args = parse_args()
    parts = set(args.parts.split(","))
    base, name = create_database()
    print(f"database {name}; {os.cpu_count()} cores; msgspec {msgspec.__version__}; loadavg {os.getloadavg()}")
    try:
        setup_django(f"{base}/{name}")
        run(args, parts)
    finally:
        try:
            from django.db import connections

            connections.close_all()
        finally:
            drop_database(base, name)
        print(f"dropped {name}")


def run(args, parts) -> None:
    from results.checks import COLUMN_KEYS as keys
    from results.services import ingest
    from smotra.errors import DomainError

    COLUMN_KEYS.update(keys)
    rng = random.Random(20250601)
    SHAPE["name"] = args.shape
    agent, endpoints = build_fleet(args.shape)
    now = datetime.now(UTC)
    batches = make_batches(agent, endpoints, args.batches, rng)
    for batch in batches:
        batch.kwargs = [
            model_kwargs(ingest._checked_candidate(agent, i, item).result) for i, item in enumerate(batch.items)
        ]
    shape = MIX if args.shape == "mix" else "fleet.py's: ping x100 over 20 endpoints"
    print(f"batch: {BATCH} items {shape}, body {fmean(len(b.body) for b in batches):.0f} bytes on average")
    from smotra.api.parsers import _HUGE_NUMBER

    hits = sum(bool(_HUGE_NUMBER.search(batch.body.decode())) for batch in batches)
    print(f"StrictJSONParser's _HUGE_NUMBER matches {hits} of {len(batches)} bodies (an 'e' and 3 digits in a UUID)")

    def exact(index, item):
        try:
            return ingest._checked_candidate(agent, index, item)
        except DomainError as exc:
            return exc

    found: dict[str, dict[str, float]] = {}
    if "validation" in parts:
        print("\nPart 1 check: msgspec against today's validation")
        for line in compare(agent, batches, now):
            print(line)
        machine = Machine()
        _, cases = stages(agent, now)
        samples = interleaved(cases | msgspec_paths(agent, now, exact), batches, args.rounds)
        cpu_table(f"Part 1: parse and validate one batch (this thread's CPU; {machine.note()})", samples)
        derived(samples)
        found["validation"] = {name.strip(): best(values) for name, values in samples.items()}
    if "payload" in parts:
        machine = Machine()
        results = [
            [ingest._checked_candidate(agent, i, item).result for i, item in enumerate(b.items)] for b in batches
        ]
        samples = interleaved(payload_cases(), results, args.rounds)
        cpu_table(f"Part 3: the store statement's payload, per batch ({machine.note()})", samples)
        found["payload"] = {name.strip(): best(values) for name, values in samples.items()}
    if "insert" in parts:
        machine = Machine()
        samples, trips, notes = measure_inserts(agent, endpoints, args.rounds, args.batches, rng)
        insert_table(samples, trips)
        print(f"  ({machine.note()})")
        for note in notes:
            print(f"  {note}")
        found["insert"] = {name: min(fmean(s.cpu_ms) for s in rounds) * 1000 for name, rounds in samples.items()}
        found["insert_pg"] = {name: min(fmean(s.backend_ms) for s in rounds) * 1000 for name, rounds in samples.items()}
    if len(found) == 4:
        summary(found)


def summary(found: dict[str, dict[str, float]]) -> None:
    """Each change's saving of this process's CPU per batch (best rounds), against what the
    service costs here (the parser plus results_ingest): the ranking the measures give."""
    v, p, i, pg = found["validation"], found["payload"], found["insert"], found["insert_pg"]
    service = v["StrictJSONParser.parse (body)"] + i["results_ingest() whole service (validation included) [rollups]"]
    current, no_tiers = "current: json_to_recordset, 1 statement [rollups]", "current: json_to_recordset, 1 statement"
    checks = v["plain checks x100 (whole)"] - v["instead: a slotted dataclass Row(**fields)"]
    changes = {
        "validation: Row (slotted dataclass) instead of CheckResult": v["CheckResult(**fields)"]
        - v["instead: a slotted dataclass Row(**fields)"],
        "validation: msgspec Raw split + per-item decode (also replaces json.loads)": checks
        + v["StrictJSONParser.parse (body)"]
        - v["msgspec Raw split, item typed + untyped"],
        "validation: msgspec.convert of the parser's dicts": checks - v["msgspec.convert(parser's dict) per item"],
        "parser: msgspec.json.decode untyped instead of json.loads(parse_float)": v[
            "json.loads(parse_float=_finite_float)"
        ]
        - v["msgspec.json.decode untyped"],
        "payload: orjson of native UUID/datetime (no str()/isoformat())": p["_payload(shares=True) (rollups on)"]
        - p["dicts, native UUID/datetime, orjson"],
        "store: server-side binding (prepared), same statement": i[current]
        - i["current SQL, server-side binding [rollups]"],
        "store: jsonb_array_elements, list payload": i[current] - i["jsonb_array_elements (list payload) [rollups]"],
        "store: COPY into a temp table + INSERT..SELECT": i[current]
        - i["COPY binary -> temp, INSERT..SELECT [rollups]"],
        "store: executemany + rollup statement": i[current] - i["executemany INSERT (pipeline) + rollups [rollups]"],
        "lock: raw SQL instead of the ORM query": i["transaction only (BEGIN, lock, COMMIT)"]
        - i["transaction only, lock by raw SQL instead of the ORM"],
        "endpoint lookup: raw SQL instead of the ORM query": i["transaction + endpoint lookup by the ORM (as ingest)"]
        - i["transaction + endpoint lookup by raw SQL (= ANY(%s))"],
    }
    print(f"\nSummary: this process's CPU per batch, parser + results_ingest here: {service:.0f} µs")
    print(f"  rollups cost the store {i[current] - i[no_tiers + ' [no rollups]']:.0f} µs of our CPU and ", end="")
    print(f"{pg[current] - pg[no_tiers + ' [no rollups]']:.0f} µs of PostgreSQL's")
    stores = {
        "store: server-side binding (prepared), same statement": "current SQL, server-side binding [rollups]",
        "store: jsonb_array_elements, list payload": "jsonb_array_elements (list payload) [rollups]",
        "store: COPY into a temp table + INSERT..SELECT": "COPY binary -> temp, INSERT..SELECT [rollups]",
        "store: executemany + rollup statement": "executemany INSERT (pipeline) + rollups [rollups]",
    }
    print(f"  {'change':76} {'our CPU saved':>16} {'PG CPU saved':>13}")
    for name, saving in sorted(changes.items(), key=lambda pair: -pair[1]):
        backend = f"{pg[current] - pg[stores[name]]:8.0f} µs" if name in stores else ""
        print(f"  {name:76} {saving:6.0f} µs ({100 * saving / service:4.1f}%) {backend:>13}")


if __name__ == "__main__":
    main()
