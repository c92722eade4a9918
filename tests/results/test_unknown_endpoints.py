"""Unknown endpoint ids (contract §6.4): remembered per agent up to ``agent.max_unknown_endpoints``,
beyond that only counted in ``smotra_unknown_endpoints_dropped_total``; pruned by ``prune_results``
once not seen for the retention."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from prometheus_client import REGISTRY

from results.models import UnknownEndpoint
from tests.results import OTHER_KEY, agent_with_key, key_header, random_id, result_item

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DROPPED = "smotra_unknown_endpoints_dropped_total"


@pytest.fixture
def agent(section_a):
    return agent_with_key(section_a, name="probe")


@pytest.fixture
def cap(settings):
    """``cap(n)``: remember at most ``n`` unknown endpoint ids per agent."""

    def set_cap(number: int) -> None:
        settings.SMOTRA = replace(settings.SMOTRA, agent=replace(settings.SMOTRA.agent, max_unknown_endpoints=number))

    return set_cap


def dropped() -> float:
    return REGISTRY.get_sample_value(DROPPED) or 0.0


def ingest(client, agent, items: list, key=None) -> dict:
    headers = key_header() if key is None else key_header(key)
    response = client.post(
        f"/v1/agent/{agent.pk}/results", data=json.dumps({"results": items}), content_type="application/json", **headers
    )
    assert response.status_code == 202, response.content
    return response.json()


def counts(agent) -> dict[str, int]:
    rows = UnknownEndpoint.objects.filter(agent=agent).values_list("endpoint_id", "count")
    return {str(endpoint_id): count for endpoint_id, count in rows}


# ---------------------------------------------------------------------------------------------
# The cap


def test_ids_beyond_the_cap_are_rejected_and_counted_but_not_stored(client, agent, cap):
    cap(3)
    ids = [random_id() for _ in range(5)]
    before = dropped()

    body = ingest(client, agent, [result_item(agent.pk, endpoint_id) for endpoint_id in ids])

    assert [rejection["error"] for rejection in body["rejected"]] == ["unknown_endpoint"] * 5
    assert counts(agent) == {endpoint_id: 1 for endpoint_id in ids[:3]}  # the first ones, in batch order
    assert dropped() - before == 2


def test_remembered_ids_keep_counting_once_the_cap_is_reached(client, agent, cap):
    cap(2)
    first, second, third = random_id(), random_id(), random_id()
    ingest(client, agent, [result_item(agent.pk, first), result_item(agent.pk, second)])
    before = dropped()

    with time_machine.travel(NOW, tick=False):
        ingest(client, agent, [result_item(agent.pk, endpoint_id) for endpoint_id in (first, third, first)])

    assert counts(agent) == {first: 3, second: 1}
    assert UnknownEndpoint.objects.get(endpoint_id=first).last_seen_at == NOW
    assert dropped() - before == 1


def test_the_cap_is_per_agent(client, agent, section_a, cap):
    cap(1)
    neighbour = agent_with_key(section_a, key=OTHER_KEY, name="neighbour")

    ingest(client, agent, [result_item(agent.pk, random_id()), result_item(agent.pk, random_id())])
    ingest(client, neighbour, [result_item(neighbour.pk, random_id())], key=OTHER_KEY)

    assert UnknownEndpoint.objects.filter(agent=agent).count() == 1
    assert UnknownEndpoint.objects.filter(agent=neighbour).count() == 1


def test_the_default_cap_is_1000_per_agent(client, agent):
    before = dropped()

    ingest(client, agent, [result_item(agent.pk, random_id()) for _ in range(1000)])
    ingest(client, agent, [result_item(agent.pk, random_id()) for _ in range(1000)])

    assert UnknownEndpoint.objects.filter(agent=agent).count() == 1000
    assert dropped() - before == 1000


# ---------------------------------------------------------------------------------------------
# Counting sightings


def test_one_result_repeated_within_a_batch_counts_once(client, agent):
    item = result_item(agent.pk, random_id())

    body = ingest(client, agent, [item, item, item])

    assert len(body["rejected"]) == 3
    assert UnknownEndpoint.objects.get().count == 1


def test_a_resent_batch_does_not_count_its_unknown_results_again(client, agent):
    endpoint_id = random_id()
    items = [result_item(agent.pk, endpoint_id), result_item(agent.pk, endpoint_id)]

    ingest(client, agent, items)
    ingest(client, agent, items)
    assert UnknownEndpoint.objects.get().count == 2
    ingest(client, agent, [result_item(agent.pk, endpoint_id)])  # a newer result counts
    assert UnknownEndpoint.objects.get().count == 3


# ---------------------------------------------------------------------------------------------
# Pruning


def remember(agent, last_seen_at: datetime, number: int = 1) -> None:
    UnknownEndpoint.objects.bulk_create(
        UnknownEndpoint(
            agent=agent, endpoint_id=random_id(), first_seen_at=last_seen_at, last_seen_at=last_seen_at, count=1
        )
        for _ in range(number)
    )


def test_prune_results_deletes_unknown_endpoints_not_seen_within_the_retention(agent):
    remember(agent, NOW - timedelta(days=31), number=3)
    remember(agent, NOW - timedelta(days=29))
    out = io.StringIO()

    with time_machine.travel(NOW, tick=False):
        call_command("prune_results", "--chunk", "2", stdout=out)

    assert list(UnknownEndpoint.objects.values_list("last_seen_at", flat=True)) == [NOW - timedelta(days=29)]
    assert "3 unknown endpoint(s)" in out.getvalue()


def test_prune_results_honours_older_than_for_unknown_endpoints(agent):
    remember(agent, NOW - timedelta(days=2))
    out = io.StringIO()

    with time_machine.travel(NOW, tick=False):
        call_command("prune_results", "--older-than", "1d", stdout=out)

    assert not UnknownEndpoint.objects.exists()
    assert "0 result(s), 0 heartbeat(s) and 1 unknown endpoint(s)" in out.getvalue()
