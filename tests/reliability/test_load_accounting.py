"""Load with accounting: 200 simulated agents onboard through the real API, then send heartbeats and
result batches (some resent at once, some raced on two connections) for a bounded time.

Afterwards every result id a 202 acknowledged is stored exactly once, the server's own tally
(``accepted`` over all answers) matches the rows, nothing is stored that no batch carried, and no
request failed with 5xx or a broken connection. Counts are asserted, never speed; the figures are printed.

``SMOTRA_LOAD_SECONDS`` (default 15) and ``SMOTRA_LOAD_AGENTS`` (default 200) make a longer job;
``.ci/run`` runs the short default.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from django.db.models import Count

from results.models import CheckResult, Heartbeat
from tests.reliability import agents_sim as sim
from tests.reliability.conftest import login

pytestmark = [pytest.mark.server, pytest.mark.slow]

AGENTS = int(os.environ.get("SMOTRA_LOAD_AGENTS", "200"))
SECONDS = float(os.environ.get("SMOTRA_LOAD_SECONDS", "15"))
SERVER_ENV = {
    # 200 registrations from one address in a minute: far above the default limit of 60.
    "SMOTRA_REGISTRATION_RATE_LIMIT": "100000",
    "SMOTRA_WORKERS": "2",
    "SMOTRA_THREADS": "4",
    "SMOTRA_LOG_LEVEL": "warn",
}


def count_ids(ids: list[str]) -> dict[str, int]:
    """{id: rows stored with that id}, from the test process."""
    counts: dict[str, int] = {}
    for chunk in sim.chunks(ids):
        rows = CheckResult.objects.filter(pk__in=chunk).values("pk").annotate(rows=Count("pk"))
        counts.update({str(row["pk"]): row["rows"] for row in rows})
    return counts


@pytest.fixture
def fleet_server(server_factory):
    from tests.factories import SuperuserFactory

    SuperuserFactory(username="fleetroot")
    server = server_factory(env=SERVER_ENV)
    return server, login(server, "fleetroot")


def test_every_acknowledged_result_is_stored_exactly_once_under_load(fleet_server):
    server, token = fleet_server
    host, port = "127.0.0.1", server.port

    started = time.monotonic()
    topology = asyncio.run(sim.provision(host, port, token, endpoints=10))
    agents = asyncio.run(sim.onboard_fleet(host, port, token, topology, AGENTS, concurrency=16))
    onboarding_seconds = time.monotonic() - started
    assert len(agents) == AGENTS

    ledger = sim.Ledger()
    behaviour = sim.Behaviour(batch_sizes=(20, 50), resend_ratio=0.1, concurrent_resend_ratio=0.02)
    fleet = sim.Fleet(host, port, agents, behaviour, ledger)
    elapsed = asyncio.run(fleet.run(SECONDS))

    agent_ids = [agent.agent_id for agent in agents]
    accounting = sim.account(ledger, count_ids, CheckResult.objects.filter(agent_id__in=agent_ids).count())
    statuses = ledger.statuses()
    resends = [exchange for exchange in ledger.exchanges if exchange.kind == "resend"]
    concurrent = [exchange for exchange in ledger.exchanges if exchange.kind == "concurrent"]
    heartbeats = ledger.statuses(("heartbeat",))[204]
    print(
        f"\nload: {AGENTS} agents onboarded in {onboarding_seconds:.1f}s; {ledger.requests()} requests in "
        f"{elapsed:.1f}s ({ledger.requests() / elapsed:.0f} rps); answers {dict(statuses)}; "
        f"{accounting.batches} batches, {accounting.acknowledged} results acknowledged, "
        f"{accounting.fleet_rows} stored, {len(resends)} resent batches, {len(concurrent)} raced batches, "
        f"{accounting.duplicates_total} duplicates skipped; {heartbeats} heartbeats"
    )

    assert ledger.problems == []
    assert set(statuses) <= {202, 204}, statuses  # no 5xx, no 4xx, no broken connection
    assert accounting.not_exactly_once == {}
    assert accounting.stored_acknowledged == accounting.acknowledged > 0
    # Every batch was acknowledged, so the fleet's rows are exactly the acknowledged ids...
    assert accounting.fleet_rows == accounting.acknowledged
    assert accounting.partial_batches == []
    # ...and the server counted each of them as accepted once, over all its answers.
    assert accounting.accepted_total == accounting.fleet_rows
    assert resends, "no batch was resent: the run was too short to prove anything"
    for batch in ledger.batches:
        assert sum(accepted for accepted, _ in batch.acks) == len(batch.items), (batch.number, batch.acks)
    assert Heartbeat.objects.filter(agent_id__in=agent_ids).count() == heartbeats
