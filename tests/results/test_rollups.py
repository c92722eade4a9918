"""Rollups: additive upserts that keep the latency distribution (results/rollups.py, histogram.py)."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from results.histogram import bucket_of, histogram_decode, histogram_encode, histogram_merge, histogram_of, percentile
from results.models import CheckResult, DayRollup, HourRollup, MinuteRollup
from results.rollups import rollups_add
from tests.factories import AgentFactory, EndpointFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC)


def ping(agent, endpoint, at, latencies, failures=0):
    return CheckResult(
        id=uuid.uuid4(),
        agent=agent,
        endpoint_id=endpoint.pk,
        check_type="ping",
        success=bool(latencies),
        checked_at=at,
        received_at=at,
        latency_ms=None,
        packets_sent=len(latencies) + failures,
        packets_received=len(latencies),
        details={"success_latencies": latencies, "successes": len(latencies), "failures": failures},
    )


def tcp(agent, endpoint, at, connect_ms, connected=True):
    return CheckResult(
        id=uuid.uuid4(),
        agent=agent,
        endpoint_id=endpoint.pk,
        check_type="tcpconnect",
        success=connected,
        checked_at=at,
        received_at=at,
        latency_ms=connect_ms,
        details={},
    )


@pytest.mark.parametrize("seed", range(20))
def test_percentiles_are_within_two_percent_of_the_exact_nearest_rank(seed):
    rng = random.Random(seed)
    samples = [
        rng.lognormvariate(math.log(rng.choice([0.3, 5, 40, 250])), rng.choice([0.1, 0.6, 1.5]))
        for _ in range(rng.randint(1, 400))
    ]
    ordered = sorted(samples)
    histogram = histogram_of(samples)
    for p in (1, 5, 50, 95, 99, 100):
        exact = ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]
        reported = percentile(histogram, p, low=ordered[0], high=ordered[-1])
        assert abs(reported - exact) <= max(0.02 * exact, 0.1), (p, exact, reported)


def test_stored_histograms_round_trip_and_merge():
    histogram = histogram_of([0.05, 1.0, 1.0, 50.0, 1e9])
    assert histogram_decode(histogram_encode(histogram)) == histogram
    assert histogram_decode(histogram_encode(histogram) * 2) == {key: 2 * count for key, count in histogram.items()}
    assert histogram_decode(histogram_merge(histogram_encode(histogram), b"")) == histogram
    assert histogram_encode({}) == b"" and histogram_decode(None) == {}


def test_bucket_bounds_are_settled_exactly():
    assert bucket_of(0) == bucket_of(0.1) == 0
    assert bucket_of(0.1 * 1.04**7) == 7 and bucket_of(0.1 * 1.04**7 * 1.0000001) == 8
    assert bucket_of(1e300) == 800


def test_two_batches_into_one_bucket_add_up(section_a):
    agent, endpoint = AgentFactory(section=section_a), EndpointFactory(section=section_a)
    rollups_add([ping(agent, endpoint, T0 + timedelta(seconds=5), [10.0, 12.0], failures=1)])
    rollups_add(
        [
            ping(agent, endpoint, T0 + timedelta(seconds=40), []),  # a failed ping: no samples
            tcp(agent, endpoint, T0 + timedelta(seconds=50), 3.0),
        ]
    )
    ping_row = MinuteRollup.objects.get(series__check_type="ping")
    assert (ping_row.bucket, ping_row.check_count, ping_row.success_count, ping_row.failure_count) == (T0, 2, 1, 1)
    assert (ping_row.packets_sent, ping_row.packets_received) == (3, 2)
    assert (ping_row.latency_count, ping_row.latency_sum, ping_row.latency_min, ping_row.latency_max) == (
        2,
        22.0,
        10.0,
        12.0,
    )
    assert sum(histogram_decode(ping_row.histogram).values()) == 2
    assert MinuteRollup.objects.get(series__check_type="tcpconnect").latency_min == 3.0
    assert HourRollup.objects.get(series__check_type="ping").check_count == 2
    assert DayRollup.objects.get(series__check_type="ping").check_count == 2


def test_histograms_merge_in_the_database(section_a):
    agent, endpoint = AgentFactory(section=section_a), EndpointFactory(section=section_a)
    first, second = [1.0, 1.0, 50.0], [1.0, 200.0]
    rollups_add([ping(agent, endpoint, T0, first)])
    rollups_add([ping(agent, endpoint, T0 + timedelta(seconds=30), second)])
    stored = MinuteRollup.objects.get()
    assert histogram_decode(stored.histogram) == histogram_of(first + second)
    assert (stored.latency_min, stored.latency_max) == (1.0, 200.0)


def test_a_long_run_of_batches_compacts_the_stored_histogram(section_a):
    """PostgreSQL appends each batch's entries and compacts past 512 bytes: no count is lost, and
    the stored form stays bounded (one entry per bucket after compaction)."""
    agent, endpoint = AgentFactory(section=section_a), EndpointFactory(section=section_a)
    samples = []
    for n in range(120):
        latencies = [1.0 + n * 0.37, 2.0 + n, 0.5]
        samples += latencies
        rollups_add([ping(agent, endpoint, T0 + timedelta(seconds=n % 60), latencies)])
    expected = histogram_of(samples)
    for model in (MinuteRollup, HourRollup, DayRollup):
        stored = bytes(model.objects.get().histogram)
        assert histogram_decode(stored) == expected, model.__name__
        assert len(stored) <= 512 + 18 or len(stored) == 6 * len(expected), model.__name__


def test_buckets_follow_the_results_own_time(section_a):
    agent, endpoint = AgentFactory(section=section_a), EndpointFactory(section=section_a)
    rollups_add([tcp(agent, endpoint, T0 + timedelta(minutes=61, seconds=59), 1.0)])
    assert MinuteRollup.objects.get().bucket == T0 + timedelta(minutes=61)
    assert HourRollup.objects.get().bucket == T0 + timedelta(hours=1)
    assert DayRollup.objects.get().bucket == T0.replace(hour=0)


def test_deleting_the_agent_deletes_its_rollups(section_a):
    agent, endpoint = AgentFactory(section=section_a), EndpointFactory(section=section_a)
    rollups_add([tcp(agent, endpoint, T0, 1.0)])
    agent.delete()
    assert not any(model.objects.exists() for model in (MinuteRollup, HourRollup, DayRollup))


# ---------------------------------------------------------------------------------------------
# Through the agent API: maintained by ingestion, exactly once; pruned by their own retention


def post_batch(client, agent, items):
    from tests.results import key_header

    response = client.post(f"/api/v1/agent/{agent.pk}/results", {"results": items}, format="json", **key_header())
    assert response.status_code == 202, response.content
    return response.json()


def test_ingestion_feeds_the_rollups_and_a_resend_changes_none(api_client, section_a):
    from tests.results import agent_with_key, result_item

    agent, endpoint = agent_with_key(section_a), EndpointFactory(section=section_a)
    items = [result_item(agent.pk, endpoint.pk, "ping"), result_item(agent.pk, endpoint.pk, "tcpconnect")]
    post_batch(api_client, agent, items)
    before = sorted(MinuteRollup.objects.values_list("series__check_type", "check_count", "latency_count", "histogram"))
    assert [(row[0], row[1], row[2]) for row in before] == [("ping", 1, 2), ("tcpconnect", 1, 1)]
    assert post_batch(api_client, agent, items)["duplicates_skipped"] == 2
    after = sorted(MinuteRollup.objects.values_list("series__check_type", "check_count", "latency_count", "histogram"))
    assert after == before
    assert HourRollup.objects.count() == DayRollup.objects.count() == 2


def test_prune_results_prunes_each_rollup_by_its_retention(section_a):
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone

    agent, endpoint = AgentFactory(section=section_a), EndpointFactory(section=section_a)
    now = timezone.now()
    for age in (timedelta(days=1), timedelta(days=15), timedelta(days=401)):
        rollups_add([tcp(agent, endpoint, now - age, 1.0)])
    out = StringIO()
    call_command("prune_results", "--chunk", "1", stdout=out)
    assert "2 minute and 2 hour and day rollup(s)" in out.getvalue()
    assert MinuteRollup.objects.count() == 1 and HourRollup.objects.count() == DayRollup.objects.count() == 2


def _snapshot():
    rows = []
    for model in (MinuteRollup, HourRollup, DayRollup):
        for row in model.objects.order_by("series_id", "bucket").values():
            row["latency_sum"] = round(row["latency_sum"], 6)  # summation order differs, not the sum
            row["histogram"] = histogram_decode(row["histogram"])  # stored entries may repeat a bucket
            rows.append((model.__name__, row))
    return rows


def test_rebuild_rollups_equals_the_incremental_rollups(api_client, section_a):
    from io import StringIO

    from django.core.management import call_command

    from tests.results import agent_with_key, result_item

    agent, endpoints = agent_with_key(section_a), [EndpointFactory(section=section_a) for _ in range(2)]
    rng = random.Random(7)
    for batch in range(6):
        items = []
        for n in range(15):
            at = (T0 + timedelta(minutes=batch * 20 + n, seconds=rng.randint(0, 59))).isoformat()
            latencies = [round(rng.lognormvariate(3, 0.5), 3) for _ in range(rng.randint(0, 3))]
            result = {"resolved_ip": "192.0.2.1", "successes": len(latencies), "failures": 3 - len(latencies)}
            result |= {"success_latencies": latencies, "error_details": None}
            items.append(result_item(agent.pk, rng.choice(endpoints).pk, "ping", result, timestamp=at))
        post_batch(api_client, agent, items)
    incremental = _snapshot()
    assert len(incremental) > 10

    out = StringIO()
    call_command("rebuild_rollups", stdout=out)
    assert "from 90 result(s)" in out.getvalue()
    assert _snapshot() == incremental

    call_command("rebuild_rollups", "--since", (T0 + timedelta(hours=1)).isoformat(), stdout=out)
    call_command("rebuild_rollups", "--endpoint", str(endpoints[0].pk), stdout=out)
    assert _snapshot() == incremental


def test_rebuild_rollups_refuses_to_delete_what_raw_results_no_longer_cover(section_a):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    agent, endpoint = AgentFactory(section=section_a), EndpointFactory(section=section_a)
    old, kept = tcp(agent, endpoint, T0 - timedelta(days=40), 1.0), tcp(agent, endpoint, T0, 2.0)
    kept.save()
    rollups_add([old, kept])  # the old raw row is gone (pruned), its rollups remain
    with pytest.raises(CommandError, match="--since 2026-12-01T00:00:00"):
        call_command("rebuild_rollups", stdout=StringIO())
    assert HourRollup.objects.count() == 2
    call_command("rebuild_rollups", "--since", "2026-12-01T00:00:00Z", stdout=StringIO())
    assert HourRollup.objects.count() == 2


@pytest.mark.parametrize(("args", "message"), [(("--since", "yesterday"), "RFC 3339"), (("--endpoint", "x"), "x")])
def test_rebuild_rollups_says_what_is_wrong(args, message):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=message):
        call_command("rebuild_rollups", *args)
