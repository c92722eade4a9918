"""Faults on a private PostgreSQL instance the test starts itself (initdb in a temporary directory,
its own loopback port): the shared server on 5432 is never touched, so these tests run the same in
both CI passes whatever DATABASE_URL says, and need no pytest database.

A. The database stopped (``pg_ctl stop -m fast``) for a few seconds under load from simulated
   agents, then started again: requests during the outage fail fast with 503 and the contract's JSON
   error, readiness answers 503, the server recovers by itself without a restart, and every result
   id a 202 acknowledged is stored exactly once (agents resend failed batches, as the real one does).
B. Every gunicorn worker SIGKILLed while a 1000-item batch is in flight, at several points of its
   processing: the batch is stored whole or not at all, and a resend completes it (exactly N rows).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from tests.reliability import agents_sim as sim
from tests.reliability.pgcluster import PgCluster, unavailable_reason
from tests.server import ROOT, ServerProcess, start_server

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(unavailable_reason() is not None, reason=f"private PostgreSQL: {unavailable_reason()}"),
]

OUTAGE_SECONDS = float(os.environ.get("SMOTRA_FAULT_OUTAGE_SECONDS", "4"))
REQUEST_BOUND = 10.0  # no request may take longer than this, outage or not
RECOVERY_BOUND = 10.0  # after the database is back, agents succeed again within this
BIG_BATCH = 1000
KILL_POINTS = (0.0, 0.25, 0.5, 0.75, 0.95)  # fractions of a big batch's normal processing time


@pytest.fixture(scope="module")
def cluster():
    with PgCluster() as pg:
        yield pg


@pytest.fixture
def database(cluster):
    """A fresh database on the private instance (started again if a test left it stopped)."""
    if not cluster.running():
        cluster.start()
    return cluster.create_database(f"smotra_{secrets.token_hex(4)}")


def serve(tmp_path: Path, database_url: str, **env: str) -> ServerProcess:
    config = tmp_path / "faults.yaml"
    config.write_text("server:\n  drain_delay: 0s\n")
    full_env = {
        "DATABASE_URL": database_url,
        "SMOTRA_REGISTRATION_RATE_LIMIT": "100000",
        "SMOTRA_LOG_LEVEL": "warn",
        "SMOTRA_WORKERS": "2",
        "SMOTRA_THREADS": "4",
        **env,
    }
    return start_server(tmp_path, env=full_env, migrate=True, args=["--config", str(config)])


def superuser_token(server: ServerProcess) -> str:
    """A superuser made with ``createsuperuser`` in the server's database, logged in over HTTP."""
    password = secrets.token_urlsafe(16)
    command = [sys.executable, str(ROOT / "manage.py"), "createsuperuser", "--noinput", "--username", "faultroot"]
    subprocess.run(
        [*command, "--email", "root@example.com"],
        cwd=ROOT,
        env={**server.env, "DJANGO_SUPERUSER_PASSWORD": password},
        check=True,
        capture_output=True,
        timeout=60,
    )
    response = server.request("POST", "/api/v1/auth/token", {"username": "faultroot", "password": password})
    assert response.status == 200, response.body
    return response.json()["access_token"]


def fleet_of(server: ServerProcess, count: int) -> list[sim.SimAgent]:
    token = superuser_token(server)

    async def onboard():
        topology = await sim.provision("127.0.0.1", server.port, token, endpoints=5)
        return await sim.onboard_fleet("127.0.0.1", server.port, token, topology, count, concurrency=4)

    return asyncio.run(onboard())


def id_counts(database_url: str, ids: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    with psycopg.connect(database_url, autocommit=True) as connection:
        for chunk in sim.chunks(ids):
            rows = connection.execute(
                "SELECT id::text, count(*) FROM results_checkresult WHERE id = ANY(%s::uuid[]) GROUP BY id", [chunk]
            )
            counts.update(dict(rows.fetchall()))
    return counts


def fleet_rows(database_url: str, agents: list[sim.SimAgent]) -> int:
    with psycopg.connect(database_url, autocommit=True) as connection:
        ids = [agent.agent_id for agent in agents]
        query = "SELECT count(*) FROM results_checkresult WHERE agent_id = ANY(%s::uuid[])"
        return connection.execute(query, [ids]).fetchone()[0]


# ---------------------------------------------------------------------------------------------
# A. The database goes away and comes back


async def poll_ready(port: int, ledger: sim.Ledger, stop_after: float) -> None:
    """GET /healthz/ready every 100 ms on a fresh connection; each answer goes to the ledger."""
    while time.monotonic() < stop_after:
        started = time.monotonic()
        try:
            reply = await sim.Connection("127.0.0.1", port, keep_alive=False).request(
                "GET", "/healthz/ready", timeout=REQUEST_BOUND
            )
            ledger.record(sim.Exchange("ready", started, time.monotonic(), reply.status))
        except sim.TransportError as exc:
            ledger.record(sim.Exchange("ready", started, time.monotonic(), None, exc.kind))
        await asyncio.sleep(0.1)


def first(exchanges, predicate) -> sim.Exchange | None:
    return min((exchange for exchange in exchanges if predicate(exchange)), key=lambda e: e.started, default=None)


def test_a_database_outage_fails_cleanly_and_the_server_recovers_by_itself(cluster, database, tmp_path):
    server = serve(tmp_path, database)
    agents = fleet_of(server, 8)
    ledger = sim.Ledger()
    behaviour = sim.Behaviour(batch_sizes=(20, 50), think=(0.05, 0.15), retry=True, timeout=REQUEST_BOUND)
    fleet = sim.Fleet("127.0.0.1", server.port, agents, behaviour, ledger)
    load_seconds = 3 + OUTAGE_SECONDS + 8

    async def load():
        readiness = asyncio.create_task(poll_ready(server.port, ledger, time.monotonic() + load_seconds + 2))
        await fleet.run(load_seconds)
        await readiness

    work = sim.in_background(load)
    time.sleep(3)
    stopping = time.monotonic()
    cluster.stop("fast")
    down = time.monotonic()
    time.sleep(OUTAGE_SECONDS)
    starting = time.monotonic()
    cluster.start()
    up = time.monotonic()
    work.result(timeout=load_seconds + behaviour.settle_seconds + 30)

    agent_exchanges = [e for e in ledger.exchanges if e.kind != "ready"]
    ready = [e for e in ledger.exchanges if e.kind == "ready"]
    during = [e for e in agent_exchanges if e.started >= down and e.finished <= starting]
    recovered = first(agent_exchanges, lambda e: e.started >= up and e.status is not None and e.status < 300)
    ready_503 = first(ready, lambda e: e.started >= stopping and e.status == 503)
    ready_back = first(ready, lambda e: e.started >= up and e.status == 200)
    late_failures = [e for e in agent_exchanges if e.started > up + RECOVERY_BOUND and e.status not in (202, 204)]
    every_id = [item_id for batch in ledger.batches for item_id in batch.ids]
    accounting = sim.account(ledger, lambda ids: id_counts(database, ids), fleet_rows(database, agents))
    statuses = ledger.statuses(("heartbeat", "results", "retry", "resend"))
    slowest = max(e.finished - e.started for e in ledger.exchanges)
    print(
        f"\noutage: database down {starting - down:.1f}s (stop took {down - stopping:.2f}s, start "
        f"{up - starting:.2f}s); {len(agents)} agents, {len(agent_exchanges)} requests, answers {dict(statuses)}; "
        f"{len(during)} requests during the outage, all answered by {sorted({e.status for e in during})}; "
        f"readiness 503 after {ready_503.finished - stopping if ready_503 else float('nan'):.2f}s, "
        f"200 again {ready_back.finished - up if ready_back else float('nan'):.2f}s after the start; "
        f"first agent success {recovered.finished - up if recovered else float('nan'):.2f}s after the start; "
        f"slowest request {slowest:.2f}s; {accounting.batches} batches, {accounting.acknowledged} results "
        f"acknowledged, {accounting.fleet_rows} stored, accepted total {accounting.accepted_total}, "
        f"{accounting.duplicates_total} duplicates"
    )

    assert ledger.problems == []  # every error was the contract's JSON; every 503 had Retry-After
    assert set(statuses) <= {202, 204, 503}, statuses  # no 500, no timeout, no broken connection
    assert statuses[503] > 0, "the outage was not seen by any agent"
    assert slowest < REQUEST_BOUND
    assert during and {e.status for e in during} == {503}
    assert ready_503 is not None and ready_503.started < starting, "readiness never answered 503 in the outage"
    assert ready_back is not None and ready_back.finished - up < RECOVERY_BOUND
    assert recovered is not None and recovered.finished - up < RECOVERY_BOUND
    assert late_failures == []
    # Accounting: each batch was resent until acknowledged, so every id is acknowledged and stored once.
    assert accounting.acknowledged == len(set(every_id)) > 0
    assert accounting.not_exactly_once == {}
    assert accounting.fleet_rows == accounting.acknowledged
    assert accounting.partial_batches == []
    assert accounting.accepted_total <= accounting.fleet_rows
    assert server.process.poll() is None, "the server exited"
    server.stop()


# ---------------------------------------------------------------------------------------------
# B. A worker killed mid-batch


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError):
                continue
    return found


def worker_pids(server: ServerProcess) -> list[int]:
    """The gunicorn workers: children of the gunicorn master, itself the child of ``serve``."""
    (master,) = children(server.process.pid)
    return children(master)


def send_raw(port: int, agent: sim.SimAgent, batch: sim.Batch) -> socket.socket:
    body = batch.body
    head = (
        f"POST {agent.path('results')} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nX-Agent-API-Key: {agent.key}\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head.encode() + body)
    return sock


def read_raw(sock: socket.socket) -> tuple[int | None, str]:
    """(status, "") for a complete answer, else (None, what happened)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        return None, "reset" if not data else "reset mid-answer"
    except TimeoutError:
        return None, "timeout"
    finally:
        sock.close()
    if not data:
        return None, "closed"
    head, _, payload = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    json.loads(payload)  # complete, or this raises
    return status, ""


def wait_for_workers(server: ServerProcess, before: set[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = set(worker_pids(server))
        if len(pids) == 2 and not pids & before:
            try:
                if server.request("GET", "/healthz/live", timeout=2).status == 200:
                    return
            except OSError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"workers did not come back within {timeout}s:\n{server.log()[-3000:]}")


def wait_for_quiet_database(database_url: str, timeout: float = 15) -> None:
    """Until no other session of this database is running a statement or holding a transaction: the
    killed worker's backend has rolled back (or committed) for good."""
    deadline = time.monotonic() + timeout
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')"
    )
    with psycopg.connect(database_url, autocommit=True) as connection:
        while connection.execute(query).fetchone()[0]:
            assert time.monotonic() < deadline, "a killed worker's database session did not end"
            time.sleep(0.05)


def post_batch(server: ServerProcess, agent: sim.SimAgent, batch: sim.Batch) -> dict:
    response = server.request("POST", agent.path("results"), batch.body, agent.headers, timeout=60)
    assert response.status == 202, response.body
    return response.json()


def test_b_a_worker_killed_mid_batch_stores_all_or_nothing_and_a_resend_completes_it(cluster, database, tmp_path):
    server = serve(tmp_path, database)
    (agent,) = fleet_of(server, 1)
    behaviour = sim.Behaviour(batch_sizes=(BIG_BATCH, BIG_BATCH))
    fleet = sim.Fleet("127.0.0.1", server.port, [agent], behaviour, sim.Ledger())
    timings = []
    for _ in range(3):  # warm both workers; the median is the normal processing time of a big batch
        started = time.monotonic()
        assert post_batch(server, agent, fleet.new_batch(agent))["accepted"] == BIG_BATCH
        timings.append(time.monotonic() - started)
    normal = sorted(timings)[1]

    outcomes = []
    for point in KILL_POINTS:
        batch = fleet.new_batch(agent)
        sock = send_raw(server.port, agent, batch)
        time.sleep(point * normal)
        victims = set(worker_pids(server))
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        status, failure = read_raw(sock)
        wait_for_workers(server, victims)
        wait_for_quiet_database(database)
        stored_before = sum(id_counts(database, batch.ids).values())
        resent = post_batch(server, agent, batch)
        stored_after = id_counts(database, batch.ids)
        outcomes.append((point, status or failure, stored_before, resent["accepted"], resent["duplicates_skipped"]))

        assert stored_before in (0, BIG_BATCH), f"kill at {point:.0%}: {stored_before} of {BIG_BATCH} stored"
        assert status in (None, 202), (status, failure)
        if status == 202:
            assert stored_before == BIG_BATCH
        assert (resent["accepted"], resent["duplicates_skipped"]) == (BIG_BATCH - stored_before, stored_before)
        assert sorted(stored_after.values()) == [1] * BIG_BATCH

    print(f"\nworker kill: a {BIG_BATCH}-item batch normally takes {normal * 1000:.0f} ms")
    print("  killed at | client saw | stored before resend | resend accepted | resend duplicates")
    for point, seen, before, accepted, duplicates in outcomes:
        print(f"  {point:9.0%} | {seen!s:>10} | {before:20} | {accepted:15} | {duplicates:17}")
    assert any(outcome[1] != 202 for outcome in outcomes), "no kill hit a batch in flight"
    assert server.process.poll() is None
    server.stop()


def test_the_private_instance_is_not_the_shared_server(cluster):
    assert cluster.port != 5432
    with psycopg.connect(cluster.url(), autocommit=True) as connection:
        directory = connection.execute("SHOW data_directory").fetchone()[0]
    assert Path(directory) == cluster.data
    assert Path(directory).is_relative_to(tempfile.gettempdir())
