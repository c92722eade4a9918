"""Concurrent batches into one rollup bucket lose nothing, against the real server on PostgreSQL.

Threads post batches at the same moment through `manage.py serve` (gunicorn, 2 workers x 4 threads):
two agents into the same minute of the same endpoint, two threads of one agent, and a third thread
resending that agent's batches while they are being stored. Afterwards the report, read over HTTP,
counts every result exactly once and its percentiles match the samples sent; the rollups equal the
raw rows. SQLite has a single writer, so the race this guards against cannot happen there."""

from __future__ import annotations

import math
import random
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.db.models import Sum

from results.models import CheckResult, DayRollup, HourRollup, MinuteRollup
from tests.factories import EndpointFactory, MembershipFactory, SectionFactory, TenantFactory, UserFactory
from tests.reliability.conftest import login, onboard_agent
from tests.results import result_item

pytestmark = pytest.mark.server

BATCHES_PER_THREAD = 8
BATCH = 100


@pytest.fixture
def server_on_postgres(transactional_db, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises every writer; real concurrent upserts need PostgreSQL")
    from tests.server import start_server

    config = tmp_path / "config.yaml"
    config.write_text("server:\n  drain_delay: 0s\n")
    server = start_server(tmp_path, args=["--config", str(config)])
    yield server
    server.stop()


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def nearest_rank(samples, p):
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def test_concurrent_batches_into_one_bucket_lose_nothing(server_on_postgres):
    server = server_on_postgres
    tenant = TenantFactory(name="Race")
    section = SectionFactory(tenant=tenant, name="edge")
    admin = UserFactory(username="raceadmin")
    MembershipFactory(user=admin, tenant=tenant, role="admin")
    token = login(server, admin.username)
    agents = {name: onboard_agent(server, section, token, hostname=name) for name in ("probe-a", "probe-b")}
    endpoint = EndpointFactory(section=section, port=443)

    # One minute, a few minutes ago (well within the minute rollups' retention).
    bucket = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
    rng = random.Random(99)
    samples: dict[str, list[float]] = defaultdict(list)

    def batch(name: str) -> list[dict]:
        agent_id, _key = agents[name]
        items = []
        for _ in range(BATCH):
            latencies = [round(rng.lognormvariate(math.log(20 if name == "probe-a" else 3), 0.5), 3) for _ in range(3)]
            samples[name] += latencies
            result = {"resolved_ip": "192.0.2.1", "successes": 3, "failures": 0, "success_latencies": latencies}
            result |= {"error_details": None}
            moment = bucket + timedelta(seconds=rng.uniform(0, 59.9))
            items.append(result_item(agent_id, endpoint.pk, "ping", result, timestamp=rfc3339(moment)))
        return items

    # Threads: two of probe-a (different batches), one resending the first one's, two of probe-b.
    a1 = [batch("probe-a") for _ in range(BATCHES_PER_THREAD)]
    plans = {
        "a1": ("probe-a", a1),
        "a2": ("probe-a", [batch("probe-a") for _ in range(BATCHES_PER_THREAD)]),
        "a1-resend": ("probe-a", a1),
        "b1": ("probe-b", [batch("probe-b") for _ in range(BATCHES_PER_THREAD)]),
        "b2": ("probe-b", [batch("probe-b") for _ in range(BATCHES_PER_THREAD)]),
    }
    start = threading.Barrier(len(plans))

    def run(plan: str) -> list[dict]:
        name, batches = plans[plan]
        agent_id, key = agents[name]
        start.wait()
        answers = []
        for items in batches:
            response = server.request(
                "POST",
                f"/api/v1/agent/{agent_id}/results",
                {"results": items},
                headers={"X-Agent-API-Key": key},
                timeout=60,
            )
            assert response.status == 202, response.body
            answers.append(response.json())
        return answers

    with ThreadPoolExecutor(max_workers=len(plans)) as pool:
        answers = dict(zip(plans, pool.map(run, plans), strict=True))

    assert all(answer["rejected"] == [] for plan in answers.values() for answer in plan)
    # Each of a1's batches was stored once, by a1 or by the racing resend, never twice.
    for first, again in zip(answers["a1"], answers["a1-resend"], strict=True):
        assert first["accepted"] + again["accepted"] == BATCH
        assert first["duplicates_skipped"] + again["duplicates_skipped"] == BATCH
    per_agent = 2 * BATCHES_PER_THREAD * BATCH
    assert CheckResult.objects.count() == 2 * per_agent

    # The rollups hold every stored result exactly once, at every resolution.
    for model in (MinuteRollup, HourRollup, DayRollup):
        totals = model.objects.aggregate(checks=Sum("check_count"), samples=Sum("latency_count"))
        assert totals == {"checks": 2 * per_agent, "samples": 2 * 3 * per_agent}, model.__name__
    assert MinuteRollup.objects.filter(bucket=bucket).count() == 2

    # And the report over HTTP says so, per agent and merged.
    headers = {"Authorization": f"Bearer {token}"}
    window = {"start_time": rfc3339(bucket), "end_time": rfc3339(bucket + timedelta(minutes=1)), "aggregation": "1m"}
    by_agent = server.request("GET", "/api/v1/result/report?" + urlencode(window), headers=headers).json()
    rows = {row["hostname"]: row for row in by_agent["data"]}
    assert {name: row["check_count"] for name, row in rows.items()} == {"probe-a": per_agent, "probe-b": per_agent}
    assert by_agent["metadata"]["total_checks"] == 2 * per_agent
    merged = server.request(
        "GET", "/api/v1/result/report?" + urlencode({**window, "group_by": "endpoint"}), headers=headers
    ).json()
    [row] = merged["data"]
    assert (row["check_count"], row["status"], row["packet_loss_percent"]) == (2 * per_agent, "reachable", 0.0)
    everything = samples["probe-a"] + samples["probe-b"]  # a1's batches were drawn once
    assert len(everything) == 2 * 3 * per_agent
    for p in (50, 95, 99):
        exact = nearest_rank(everything, p)
        assert abs(row[f"p{p}_response_time_ms"] - exact) <= max(0.02 * exact, 0.1) + 5e-4, (p, exact, row)
        for name in ("probe-a", "probe-b"):
            exact = nearest_rank(samples[name], p)
            assert abs(rows[name][f"p{p}_response_time_ms"] - exact) <= max(0.02 * exact, 0.1) + 5e-4
