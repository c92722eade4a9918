"""Graceful shutdown under load: SIGTERM to ``manage.py serve`` while simulated agents keep sending
heartbeats and result batches, on kept-alive connections and on a new connection per request.

- Every request the server accepted gets a complete answer: each request id in the server's access
  log reached its client as a whole response, and no client saw a connection reset or cut off.
  Refused connections after the listener closed are expected (an agent retries those).
- /healthz/ready answers 503 well within ``drain_delay`` and stays 503 until the listener closes;
  connections are refused only after that (a load balancer has ``drain_delay`` to notice).
- The process exits with 0 within ``shutdown_timeout`` (+ a small margin).

Before smotra.gunicorn_worker, connections made while the stopping workers finished their last
requests were completed by the kernel, never accepted, and reset when the workers exited.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time

import pytest

from tests.reliability import agents_sim as sim
from tests.reliability.conftest import login
from tests.server import start_server

pytestmark = pytest.mark.server

DRAIN_DELAY = 2.0
SHUTDOWN_TIMEOUT = 10.0
EXIT_MARGIN = 3.0
KEEPALIVE_AGENTS = 6
ONE_SHOT_CLIENTS = 6


@pytest.fixture
def live(transactional_db, tmp_path):
    from tests.factories import SuperuserFactory

    SuperuserFactory(username="shutdownroot")
    config = tmp_path / "shutdown.yaml"
    config.write_text(f"server:\n  drain_delay: {DRAIN_DELAY}s\n  shutdown_timeout: {SHUTDOWN_TIMEOUT}s\n")
    env = {"SMOTRA_REGISTRATION_RATE_LIMIT": "100000", "SMOTRA_LOG_LEVEL": "info", "SMOTRA_LOG_FORMAT": "json"}
    server = start_server(tmp_path, env=env, args=["--config", str(config)])
    yield server, login(server, "shutdownroot")
    server.stop()


async def one_shot_client(fleet: sim.Fleet, agent: sim.SimAgent) -> None:
    """A new connection for every request (``Connection: close``); pauses briefly after a refusal."""
    rounds = 0
    while not fleet.stopping.is_set():
        rounds += 1
        conn = sim.Connection(fleet.host, fleet.port, keep_alive=False)
        if rounds % 2:
            body = sim.heartbeat_body(rounds)
            answered = await fleet.call(conn, "once", "POST", agent.path("heartbeat"), body, agent.headers) is not None
        else:
            answered = await fleet.send(conn, agent, fleet.new_batch(agent), "once")
        conn.close()
        await asyncio.sleep(0.01 if answered else 0.05)


async def poll_ready(fleet: sim.Fleet, ledger: sim.Ledger) -> None:
    while not fleet.stopping.is_set():
        started = time.monotonic()
        try:
            conn = sim.Connection(fleet.host, fleet.port, keep_alive=False)
            reply = await conn.request("GET", "/healthz/ready", timeout=5)
            ledger.record(sim.Exchange("ready", started, time.monotonic(), reply.status))
        except sim.TransportError as exc:
            ledger.record(sim.Exchange("ready", started, time.monotonic(), None, exc.kind))
        await asyncio.sleep(0.05)


def access_logged_ids(log: str) -> set[str]:
    """Request ids of every request the application answered (our access log, JSON lines)."""
    ids = set()
    for line in log.splitlines():
        if '"smotra.access"' in line:
            try:
                ids.add(json.loads(line)["request_id"])
            except (ValueError, KeyError):
                continue
    return ids


def test_sigterm_under_load_answers_every_accepted_request_and_exits_cleanly(live):
    server, token = live

    async def onboard():
        topology = await sim.provision("127.0.0.1", server.port, token, endpoints=5)
        return await sim.onboard_fleet("127.0.0.1", server.port, token, topology, KEEPALIVE_AGENTS + ONE_SHOT_CLIENTS)

    agents = asyncio.run(onboard())
    ledger = sim.Ledger()
    # Big batches keep requests in flight at the moment the workers are told to stop.
    behaviour = sim.Behaviour(batch_sizes=(100, 400), think=(0.0, 0.05), timeout=SHUTDOWN_TIMEOUT + 5)
    fleet = sim.Fleet("127.0.0.1", server.port, agents, behaviour, ledger)

    async def load():
        keepalive = [fleet.drive(agent, time.monotonic() + 120) for agent in agents[:KEEPALIVE_AGENTS]]
        once = [one_shot_client(fleet, agent) for agent in agents[KEEPALIVE_AGENTS:]]
        await asyncio.gather(*keepalive, *once, poll_ready(fleet, ledger))

    work = sim.in_background(load)
    time.sleep(2)
    term = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(timeout=SHUTDOWN_TIMEOUT + 15)
    exited = time.monotonic()
    time.sleep(0.5)  # clients see the refusals of a closed port too
    fleet.stop()
    work.result(timeout=SHUTDOWN_TIMEOUT + 30)

    logged = access_logged_ids(server.log())
    agent_exchanges = [e for e in ledger.exchanges if e.kind != "ready"]
    ready = sorted((e for e in ledger.exchanges if e.kind == "ready"), key=lambda e: e.started)
    first_503 = min(
        (e for e in ready if e.finished >= term and e.status == 503), key=lambda e: e.finished, default=None
    )
    refused = [e for e in ledger.exchanges if e.error == "refused"]
    first_refused = min((e.finished for e in refused), default=None)
    broken = [e for e in ledger.exchanges if e.status is None and e.error != "refused"]
    unanswered = [e for e in agent_exchanges if e.request_id in logged and e.status is None]
    before_term = [e for e in agent_exchanges if e.started < term]
    # Accepted before the listener closed (workers told to stop), answered after it.
    closed = first_refused if first_refused is not None else term + DRAIN_DELAY
    in_flight_at_stop = [e for e in agent_exchanges if e.started < closed < e.finished and e.status is not None]
    after_503 = [e for e in ready if first_503 and e.started > first_503.finished and e.status is not None]

    def since(moment: float | None) -> str:
        return f"{moment - term:.2f}s" if moment is not None else "never"

    print(
        f"\nshutdown: {len(agents)} agents, {len(agent_exchanges)} requests ({len(before_term)} before SIGTERM), "
        f"answers {dict(ledger.statuses())}; readiness answered 503 {since(first_503 and first_503.finished)} "
        f"after SIGTERM, first refused connection {since(first_refused)}, exit {code} after {since(exited)} "
        f"(drain_delay {DRAIN_DELAY:g}s, shutdown_timeout {SHUTDOWN_TIMEOUT:g}s); {len(in_flight_at_stop)} "
        f"requests in flight when the listener closed, {len(refused)} refused, {len(broken)} broken, "
        f"{len(logged)} answers in the access log"
    )

    assert code == 0, server.log()[-3000:]
    assert exited - term <= SHUTDOWN_TIMEOUT + EXIT_MARGIN
    assert ledger.problems == []
    assert set(ledger.statuses(("heartbeat", "results", "resend", "once"))) <= {202, 204, "refused"}
    assert broken == [], [(e.kind, e.error, round(e.started - term, 3)) for e in broken]
    assert unanswered == []
    assert first_503 is not None and first_503.finished - term < DRAIN_DELAY
    assert {e.status for e in after_503} == {503}, "readiness came back before the listener closed"
    assert first_refused is not None and first_503.finished < first_refused
    assert first_refused - term >= DRAIN_DELAY - 0.1, "connections were refused before the drain delay ended"
    assert in_flight_at_stop, "no request was in flight when the listener closed: the test proved nothing"
