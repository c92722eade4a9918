"""``POST {prefix}/agent/{id}/results`` (contract §6.4): storage per type, dedup, per-item rejections,
limits, unknown endpoints, atomicity."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import DatabaseError, connection
from django.db.models import Sum

from agents.models import Agent
from results.models import CheckResult, MinuteRollup, UnknownEndpoint
from tests.factories import EndpointFactory, SectionFactory
from tests.results import (
    EXPECTED,
    KEY,
    OTHER_KEY,
    SAMPLES,
    agent_with_key,
    all_types,
    key_header,
    random_id,
    result_item,
    stored_columns,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CHECKED_AT = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def agent(section_a):
    return agent_with_key(section_a, name="probe")


@pytest.fixture
def endpoint(section_a):
    return EndpointFactory(section=section_a, address="192.0.2.1")


def url(agent, prefix: str = "/v1") -> str:
    return f"{prefix}/agent/{agent.pk}/results"


def post(client, agent, body, key: str = KEY, prefix: str = "/v1"):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(url(agent, prefix), data=data, content_type="application/json", **key_header(key))


def ingest(client, agent, items: list, **kwargs) -> dict:
    response = post(client, agent, {"results": items}, **kwargs)
    assert response.status_code == 202, response.content
    return response.json()


def tcp_item(agent, endpoint, **fields) -> dict:
    return result_item(agent.pk, endpoint.pk, "tcpconnect", **fields)


def with_result(agent, endpoint, check_type: str, **changes) -> dict:
    return result_item(agent.pk, endpoint.pk, check_type, {**SAMPLES[check_type], **changes})


# ---------------------------------------------------------------------------------------------
# Storage


@pytest.mark.parametrize("check_type", list(SAMPLES))
def test_it_stores_each_check_type_with_its_columns_and_details(client, agent, endpoint, check_type):
    item = result_item(agent.pk, endpoint.pk, check_type)

    with time_machine.travel(NOW, tick=False):
        body = ingest(client, agent, [item])

    assert body["accepted"] == 1
    assert (body["duplicates_skipped"], body["rejected"]) == (0, [])
    stored = CheckResult.objects.get()
    columns, details = EXPECTED[check_type]
    assert str(stored.pk) == item["id"]
    assert (stored.agent_id, stored.endpoint_id, stored.check_type) == (agent.pk, endpoint.pk, check_type)
    assert stored.checked_at == CHECKED_AT
    assert stored.received_at == NOW
    assert stored_columns(stored) == columns
    assert stored.details == details


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_it_answers_202_with_the_submission_summary(client, agent, endpoint, prefix):
    with time_machine.travel(NOW, tick=False):
        response = post(client, agent, {"results": all_types(agent.pk, endpoint.pk)}, prefix=prefix)

    assert response.status_code == 202
    body = response.json()
    assert body.keys() == {"submission_id", "accepted", "duplicates_skipped", "rejected", "received_at"}
    assert uuid.UUID(body["submission_id"]).version == 7
    assert (body["accepted"], body["duplicates_skipped"], body["rejected"]) == (6, 0, [])
    assert datetime.fromisoformat(body["received_at"]) == NOW
    assert sorted(CheckResult.objects.values_list("check_type", flat=True)) == sorted(SAMPLES)


@pytest.mark.parametrize(
    ("check_type", "changes", "success"),
    [
        ("ping", {"successes": 0, "failures": 3, "success_latencies": []}, False),
        ("ping", {"successes": 1, "failures": 2, "success_latencies": [3.0]}, True),
        ("tcpconnect", {"connected": False, "connect_time_ms": None}, False),
        ("udpconnect", {"probe_successful": True, "response_time_ms": 2.5}, True),
        ("httpget", {"status_code": 200, "success": True}, True),
        ("httpget", {"status_code": 200, "success": False}, False),
        ("traceroute", {"target_reached": False}, False),
        ("plugin", {"success": False}, False),
    ],
)
def test_success_follows_the_contracts_rule_per_type(client, agent, endpoint, check_type, changes, success):
    ingest(client, agent, [with_result(agent, endpoint, check_type, **changes)])

    assert CheckResult.objects.get().success is success


def test_a_failed_ping_has_no_latency_and_counts_its_packets(client, agent, endpoint):
    ingest(client, agent, [with_result(agent, endpoint, "ping", successes=0, failures=4, success_latencies=[])])

    stored = CheckResult.objects.get()
    assert (stored.latency_ms, stored.packets_sent, stored.packets_received) == (None, 4, 0)


def test_a_trace_that_missed_its_target_has_no_primary_latency(client, agent, endpoint):
    ingest(client, agent, [with_result(agent, endpoint, "traceroute", target_reached=False)])

    assert CheckResult.objects.get().latency_ms is None


def test_it_accepts_results_for_the_agents_own_endpoint_and_a_disabled_one(client, agent, section_a):
    own = EndpointFactory(section=section_a, address="192.0.2.200")
    Agent.objects.filter(pk=agent.pk).update(self_endpoint=own)
    disabled = EndpointFactory(section=section_a, address="192.0.2.201", enabled=False)

    body = ingest(client, agent, [tcp_item(agent, own), tcp_item(agent, disabled)])

    assert body["accepted"] == 2


def test_it_sets_last_seen_and_last_result(client, agent, endpoint):
    with time_machine.travel(NOW, tick=False):
        ingest(client, agent, [tcp_item(agent, endpoint)])

    fresh = Agent.objects.get(pk=agent.pk)
    assert (fresh.last_seen_at, fresh.last_result_at) == (NOW, NOW)


def test_a_batch_of_only_rejections_sets_last_seen_but_not_last_result(client, agent):
    with time_machine.travel(NOW, tick=False):
        body = ingest(client, agent, [result_item(agent.pk, random_id())])

    assert body["accepted"] == 0
    fresh = Agent.objects.get(pk=agent.pk)
    assert (fresh.last_seen_at, fresh.last_result_at) == (NOW, None)


# ---------------------------------------------------------------------------------------------
# Duplicates


def test_resending_a_batch_stores_nothing_twice(client, agent, endpoint):
    batch = all_types(agent.pk, endpoint.pk)
    ingest(client, agent, batch)
    stored = list(CheckResult.objects.order_by("pk").values())

    body = ingest(client, agent, batch)

    assert (body["accepted"], body["duplicates_skipped"], body["rejected"]) == (0, 6, [])
    assert list(CheckResult.objects.order_by("pk").values()) == stored


def test_a_partly_resent_batch_stores_only_the_new_items(client, agent, endpoint):
    batch = all_types(agent.pk, endpoint.pk)
    ingest(client, agent, batch[:4])

    body = ingest(client, agent, batch)

    assert (body["accepted"], body["duplicates_skipped"]) == (2, 4)
    assert CheckResult.objects.count() == 6


def test_the_same_id_twice_in_one_batch_is_stored_once(client, agent, endpoint):
    first = tcp_item(agent, endpoint)
    again = {**tcp_item(agent, endpoint), "id": first["id"]}

    body = ingest(client, agent, [first, again])

    assert (body["accepted"], body["duplicates_skipped"], body["rejected"]) == (1, 1, [])
    assert CheckResult.objects.get().pk == uuid.UUID(first["id"])


def test_an_upper_case_id_is_the_same_result(client, agent, endpoint):
    item = tcp_item(agent, endpoint)
    ingest(client, agent, [item])

    body = ingest(client, agent, [{**item, "id": item["id"].upper()}])

    assert (body["accepted"], body["duplicates_skipped"]) == (0, 1)


# ---------------------------------------------------------------------------------------------
# Per-item rejections


@pytest.fixture
def foreign_endpoint(section_b):
    return EndpointFactory(section=section_b, address="foreign.example.net")


def test_a_mixed_batch_stores_the_good_items_and_lists_the_others_in_order(
    client, agent, endpoint, section_b, foreign_endpoint
):
    stranger = agent_with_key(section_b, key=OTHER_KEY, name="stranger")
    unknown_id = random_id()
    good = [tcp_item(agent, endpoint), result_item(agent.pk, endpoint.pk, "httpget")]
    items = [
        good[0],
        result_item(agent.pk, unknown_id, "ping"),
        result_item(stranger.pk, endpoint.pk, "ping"),
        result_item(agent.pk, endpoint.pk, "icmp", {"resolved_ip": "192.0.2.1"}),
        with_result(agent, endpoint, "ping", successes="2"),
        good[1],
        result_item(agent.pk, foreign_endpoint.pk, "tcpconnect"),
        result_item(agent.pk, endpoint.pk, "tcp_connect", SAMPLES["tcpconnect"]),
        {**tcp_item(agent, endpoint), "id": "not-a-uuid"},
        "not an object",
        {**tcp_item(agent, endpoint), "timestamp": None},
    ]

    body = ingest(client, agent, items)

    assert (body["accepted"], body["duplicates_skipped"]) == (2, 0)
    assert {str(pk) for pk in CheckResult.objects.values_list("pk", flat=True)} == {item["id"] for item in good}
    rejected = body["rejected"]
    assert [(entry["index"], entry["error"]) for entry in rejected] == [
        (1, "unknown_endpoint"),
        (2, "agent_id_mismatch"),
        (3, "invalid_check_type"),
        (4, "validation_error"),
        (6, "unknown_endpoint"),
        (7, "invalid_check_type"),
        (8, "validation_error"),
        (9, "validation_error"),
        (10, "validation_error"),
    ]
    for entry in rejected:
        assert entry.keys() == {"index", "id", "error", "message"}
        assert entry["message"]
        assert entry["id"] == (items[entry["index"]]["id"] if isinstance(items[entry["index"]], dict) else None)
    messages = {entry["index"]: entry["message"] for entry in rejected}
    assert "successes" in messages[4]
    assert "icmp" in messages[3]
    assert "timestamp" in messages[10]


@pytest.mark.parametrize(
    ("item_changes", "field"),
    [
        ({"id": None}, "id"),
        ({"id": 12345}, "id"),
        ({"agent_id": "nope"}, "agent_id"),
        ({"endpoint_id": None}, "endpoint_id"),
        ({"timestamp": "2025-06-01 12:00"}, "timestamp"),
        ({"timestamp": "2025-06-01T12:00:00"}, "timestamp"),
        ({"check_type": None}, "check_type"),
        ({"check_type": "ping"}, "check_type"),
        ({"check_type": {"type": "ping", "result": None}}, "check_type.result"),
        ({"check_type": {"type": "ping", "result": []}}, "check_type.result"),
    ],
)
def test_it_rejects_malformed_items_naming_the_field(client, agent, endpoint, item_changes, field):
    item = {**result_item(agent.pk, endpoint.pk), **item_changes}

    [rejection] = ingest(client, agent, [item])["rejected"]

    assert rejection["error"] == "validation_error"
    assert f"results[0].{field}" in rejection["message"]
    assert not CheckResult.objects.exists()


@pytest.mark.parametrize(
    ("check_type", "changes", "field"),
    [
        ("ping", {"successes": -1}, "successes"),
        ("ping", {"failures": 1.5}, "failures"),
        ("ping", {"success_latencies": None}, "success_latencies"),
        ("ping", {"success_latencies": [1.0, "2"]}, "success_latencies[1]"),
        ("ping", {"resolved_ip": None}, "resolved_ip"),
        ("ping", {"resolved_ip": "x" * 65}, "resolved_ip"),
        ("ping", {"error_details": {"errors": "boom"}}, "error_details.errors"),
        ("ping", {"error_details": ["boom"]}, "error_details"),
        ("tcpconnect", {"connected": "yes"}, "connected"),
        ("tcpconnect", {"connect_time_ms": -0.5}, "connect_time_ms"),
        ("udpconnect", {"probe_successful": None}, "probe_successful"),
        ("httpget", {"status_code": "200"}, "status_code"),
        ("httpget", {"status_code": 1000}, "status_code"),
        ("httpget", {"response_size_bytes": -1}, "response_size_bytes"),
        ("httpget", {"success": 1}, "success"),
        ("traceroute", {"hops": None}, "hops"),
        ("traceroute", {"hops": [{"hop": "1"}]}, "hops[0].hop"),
        ("traceroute", {"hops": ["gw"]}, "hops[0]"),
        ("traceroute", {"target_reached": None}, "target_reached"),
        ("plugin", {"plugin_name": None}, "plugin_name"),
        ("plugin", {"data": {"answer": 7}}, "data"),
        ("plugin", {"data": ["answer"]}, "data"),
        ("plugin", {"success": "true"}, "success"),
    ],
)
def test_it_rejects_invalid_fields_per_check_type(client, agent, endpoint, check_type, changes, field):
    body = ingest(client, agent, [with_result(agent, endpoint, check_type, **changes), tcp_item(agent, endpoint)])

    assert body["accepted"] == 1
    [rejection] = body["rejected"]
    assert (rejection["index"], rejection["error"]) == (0, "validation_error")
    assert f"results[0].check_type.result.{field}" in rejection["message"]
    assert CheckResult.objects.get().check_type == "tcpconnect"


@pytest.mark.parametrize(
    "check",
    [
        {"type": "ICMP", "result": {}},
        {"type": None, "result": {}},
        {"type": 7, "result": {}},
        {"type": ["ping"], "result": SAMPLES["ping"]},
        {"type": {"name": "ping"}, "result": SAMPLES["ping"]},
        {"result": SAMPLES["ping"]},
    ],
    ids=["unknown_name", "null", "number", "list", "object", "missing"],
)
def test_it_rejects_unknown_check_types_whatever_their_json_type(client, agent, endpoint, check):
    body = ingest(client, agent, [result_item(agent.pk, endpoint.pk) | {"check_type": check}])

    assert [rejection["error"] for rejection in body["rejected"]] == ["invalid_check_type"]
    assert not CheckResult.objects.exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"successes": 3_000_000_000, "failures": 0},
        {"successes": 2_000_000_000, "failures": 2_000_000_000},
    ],
    ids=["successes_beyond_int32", "sum_beyond_int32"],
)
def test_it_rejects_packet_counts_the_columns_cannot_hold(client, agent, endpoint, changes):
    """A value the database refuses would fail the whole batch again on every resend."""
    body = ingest(client, agent, [with_result(agent, endpoint, "ping", **changes), tcp_item(agent, endpoint)])

    assert [(rejection["index"], rejection["error"]) for rejection in body["rejected"]] == [(0, "validation_error")]
    assert body["accepted"] == 1


@pytest.mark.parametrize(
    ("check_type", "changes"),
    [
        ("tcpconnect", {"resolved_ip": "192.0.2.1\u0000"}),
        ("udpconnect", {"error_details": {"errors": ["no\u0000reply"]}}),
        ("plugin", {"data": {"answer": "a\u0000b"}}),
        ("plugin", {"data": {"key\u0000": "b"}}),
        ("traceroute", {"hops": [{"hop": 1, "hostname": "gw\u0000", "resolved_ip": None, "success_latencies": []}]}),
        ("httpget", {"future_field": [{"nested": "\u0000"}]}),
    ],
    ids=["column", "errors", "plugin_value", "plugin_key", "hop_hostname", "unknown_key"],
)
def test_it_rejects_nul_characters_the_database_cannot_store(client, agent, endpoint, check_type, changes):
    """PostgreSQL refuses U+0000 in text and jsonb: one such item must not fail the batch."""
    body = ingest(client, agent, [with_result(agent, endpoint, check_type, **changes), tcp_item(agent, endpoint)])

    [rejection] = body["rejected"]
    assert (rejection["index"], rejection["error"]) == (0, "validation_error")
    assert "NUL" in rejection["message"]
    assert CheckResult.objects.get().check_type == "tcpconnect"


@pytest.mark.parametrize("number", ["1e400", "-1.5E+309", "1" + "0" * 400 + ".5"])
def test_a_number_past_the_range_of_a_float_is_invalid_json(client, agent, endpoint, assert_error, number):
    """It would be stored as infinity, which no JSON (nor jsonb) can hold: the batch would fail
    forever. Refused whole, like NaN."""
    item = json.dumps({"results": [with_result(agent, endpoint, "plugin", data={"x": 1})]})
    raw = item.replace('{"x": 1}', f'{{"x": {number}}}')
    response = client.post(url(agent), raw, content_type="application/json", **key_header(KEY))

    assert_error(response, 400, "invalid_json")
    assert not CheckResult.objects.exists()


def test_an_id_another_agent_stored_is_a_duplicate_that_adds_to_no_rollup(client, agent, endpoint, section_a):
    other = agent_with_key(section_a, key=OTHER_KEY, name="other")
    item = tcp_item(agent, endpoint)
    assert ingest(client, agent, [item])["accepted"] == 1

    body = ingest(client, other, [{**item, "agent_id": str(other.pk)}], key=OTHER_KEY)

    assert (body["accepted"], body["duplicates_skipped"]) == (0, 1)
    assert CheckResult.objects.get().agent_id == agent.pk
    assert MinuteRollup.objects.aggregate(checks=Sum("check_count"))["checks"] == 1


def test_it_keeps_an_escaped_backslash_that_only_looks_like_nul(client, agent, endpoint):
    item = with_result(agent, endpoint, "plugin", data={"path": "C:\\u0000"})

    assert ingest(client, agent, [item])["accepted"] == 1
    assert CheckResult.objects.get().details["data"] == {"path": "C:\\u0000"}


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_it_rejects_timestamps_beyond_the_representable_range(client, agent, endpoint, timestamp):
    body = ingest(client, agent, [tcp_item(agent, endpoint, timestamp=timestamp), tcp_item(agent, endpoint)])

    assert [(rejection["index"], rejection["error"]) for rejection in body["rejected"]] == [(0, "validation_error")]
    assert body["accepted"] == 1


# ---------------------------------------------------------------------------------------------
# Unknown endpoints


def test_it_remembers_an_unknown_endpoint_per_agent(client, agent, endpoint):
    unknown_id = random_id()
    batch = [
        result_item(agent.pk, unknown_id, "httpget"),
        result_item(agent.pk, unknown_id, "ping", {**SAMPLES["ping"], "resolved_ip": "203.0.113.5"}),
    ]

    with time_machine.travel(NOW, tick=False) as clock:
        body = ingest(client, agent, batch)
        clock.shift(timedelta(minutes=1))
        ingest(client, agent, batch)  # resent: seen again, not counted again

    assert [rejection["error"] for rejection in body["rejected"]] == ["unknown_endpoint", "unknown_endpoint"]
    unknown = UnknownEndpoint.objects.get()
    assert (unknown.agent_id, str(unknown.endpoint_id)) == (agent.pk, unknown_id)
    assert unknown.count == 2
    assert (unknown.first_seen_at, unknown.last_seen_at) == (NOW, NOW + timedelta(minutes=1))
    assert unknown.sample_address == "203.0.113.5"
    assert not CheckResult.objects.exists()


def test_each_agent_has_its_own_unknown_endpoints(client, agent, section_a):
    neighbour = agent_with_key(section_a, key=OTHER_KEY, name="neighbour")
    unknown_id = random_id()

    ingest(client, agent, [result_item(agent.pk, unknown_id)])
    ingest(client, neighbour, [result_item(neighbour.pk, unknown_id)], key=OTHER_KEY)

    assert dict(UnknownEndpoint.objects.values_list("agent_id", "count")) == {agent.pk: 1, neighbour.pk: 1}


def test_an_endpoint_of_another_section_is_unknown_but_not_recorded(client, agent, section_a, foreign_endpoint):
    sibling = EndpointFactory(section=SectionFactory(tenant=section_a.tenant), address="sibling.example.net")

    body = ingest(client, agent, [result_item(agent.pk, foreign_endpoint.pk), result_item(agent.pk, sibling.pk)])

    assert [rejection["error"] for rejection in body["rejected"]] == ["unknown_endpoint", "unknown_endpoint"]
    assert not UnknownEndpoint.objects.exists()
    assert not CheckResult.objects.exists()


def test_adopting_an_unknown_endpoint_makes_its_results_welcome(client, agent, section_a):
    from endpoints.services import endpoint_create
    from tenants.services import Actor

    unknown_id = random_id()
    ingest(client, agent, [result_item(agent.pk, unknown_id)])

    endpoint_create(actor=Actor.cli(), section=section_a, address="203.0.113.5", endpoint_id=unknown_id)
    body = ingest(client, agent, [result_item(agent.pk, unknown_id)])

    assert body["accepted"] == 1


# ---------------------------------------------------------------------------------------------
# Whole-request refusals


@pytest.mark.parametrize(
    "body", [{"results": []}, {}, {"results": None}, {"other": [1]}], ids=["empty", "no_key", "null", "other_key"]
)
def test_it_refuses_an_empty_batch(client, agent, assert_error, body):
    assert_error(post(client, agent, body), 400, "empty_batch", field="results")

    assert Agent.objects.get(pk=agent.pk).last_seen_at is None


@pytest.mark.parametrize(
    ("body", "field"),
    [({"results": "all"}, "results"), ({"results": {"0": {}}}, "results"), ([{}], "body"), ("x", "body")],
    ids=["string_results", "object_results", "array_body", "string_body"],
)
def test_it_refuses_a_body_that_is_not_a_batch(client, agent, assert_error, body, field):
    assert_error(post(client, agent, body), 400, "validation_error", field=field)


@pytest.mark.parametrize("raw", [b'{"results": [', b"results=1", b'{"results": [NaN]}'])
def test_it_refuses_malformed_json(client, agent, assert_error, raw):
    assert_error(post(client, agent, raw), 400, "invalid_json")

    assert not CheckResult.objects.exists()


def small_batch_limit(settings, items: int) -> None:
    settings.SMOTRA = replace(settings.SMOTRA, results=replace(settings.SMOTRA.results, max_batch_items=items))


def test_it_refuses_more_items_than_the_configured_maximum(client, agent, endpoint, settings, assert_error):
    small_batch_limit(settings, 3)
    items = [tcp_item(agent, endpoint) for _ in range(4)]

    body = assert_error(post(client, agent, {"results": items}), 413, "payload_too_large")

    assert "3" in body["message"]
    assert not CheckResult.objects.exists()
    assert ingest(client, agent, items[:3])["accepted"] == 3


def test_the_default_maximum_is_1000_items(client, agent, endpoint, assert_error):
    # Over the limit the items are not even looked at: cheap placeholders will do.
    assert_error(post(client, agent, {"results": [{}] * 1001}), 413, "payload_too_large")
    assert not CheckResult.objects.exists()

    body = ingest(client, agent, [tcp_item(agent, endpoint) for _ in range(1000)])

    assert (body["accepted"], body["rejected"]) == (1000, [])
    assert CheckResult.objects.count() == 1000


def test_it_refuses_a_body_beyond_the_size_limit(client, agent, endpoint, settings, assert_error):
    settings.SMOTRA = replace(settings.SMOTRA, results=replace(settings.SMOTRA.results, max_body_bytes=2048))
    items = [tcp_item(agent, endpoint) for _ in range(20)]
    assert len(json.dumps({"results": items})) > 2048

    assert_error(post(client, agent, {"results": items}), 413, "payload_too_large")

    assert not CheckResult.objects.exists()
    assert ingest(client, agent, items[:2])["accepted"] == 2


def test_it_answers_401_without_a_key_before_parsing_the_body(client, agent, assert_error):
    response = client.post(url(agent), data=b"{broken", content_type="application/json")

    assert_error(response, 401, "unauthorized")


def test_it_answers_401_without_a_key_before_counting_the_items(client, agent, assert_error):
    response = client.post(url(agent), data=json.dumps({"results": [{}] * 1001}), content_type="application/json")

    assert_error(response, 401, "unauthorized")


def test_it_answers_401_for_a_revoked_agent(client, agent, endpoint, assert_error):
    Agent.objects.filter(pk=agent.pk).update(revoked_at=NOW)

    assert_error(post(client, agent, {"results": [tcp_item(agent, endpoint)]}), 401, "unauthorized")
    assert not CheckResult.objects.exists()


def test_it_answers_403_on_another_agents_path(client, agent, endpoint, section_b, assert_error):
    stranger = agent_with_key(section_b, key=OTHER_KEY, name="stranger")
    items = [result_item(stranger.pk, endpoint.pk), tcp_item(agent, endpoint)]

    assert_error(post(client, agent, {"results": items}, key=OTHER_KEY), 403, "forbidden")

    assert not CheckResult.objects.exists()
    assert Agent.objects.get(pk=agent.pk).last_seen_at is None


# ---------------------------------------------------------------------------------------------
# Atomicity


def test_accepted_items_are_stored_all_or_none(client, agent, endpoint):
    """The statement adding the batch to the rollups has run, and then fails: what the batch wrote
    (SQLite: two raw INSERTs of 500 and 100 rows and the upserts; PostgreSQL: the one statement
    that does it all) must all be rolled back."""
    failed = []

    def fail_the_rollups(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "results_minuterollup" in sql and not failed:
            failed.append(sql)
            raise DatabaseError("simulated failure after the rollup upsert ran")
        return result

    items = [tcp_item(agent, endpoint) for _ in range(600)]
    client.raise_request_exception = False
    with connection.execute_wrapper(fail_the_rollups):
        response = post(client, agent, {"results": items})

    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert len(failed) == 1
    assert not CheckResult.objects.exists() and not MinuteRollup.objects.exists()
    assert Agent.objects.get(pk=agent.pk).last_result_at is None

    assert ingest(client, agent, items)["accepted"] == 600  # the agent's resend then succeeds
    assert CheckResult.objects.count() == 600
    assert MinuteRollup.objects.aggregate(checks=Sum("check_count"))["checks"] == 600


# ---------------------------------------------------------------------------------------------
# A failed DNS lookup is a down event, and older agents' string errors are error text


@pytest.mark.parametrize(
    ("check_type", "result"),
    [
        ("tcpconnect", {"resolved_ip": None, "connected": False, "connect_time_ms": None, "error": "dns: NXDOMAIN"}),
        ("udpconnect", {"probe_successful": False, "response_time_ms": None, "error_details": {"errors": ["dns"]}}),
    ],
)
def test_a_failed_lookup_is_stored_as_a_failed_check(client, agent, endpoint, check_type, result):
    body = ingest(client, agent, [result_item(agent.pk, endpoint.pk, check_type, result)])

    assert (body["accepted"], body["rejected"]) == (1, [])
    stored = CheckResult.objects.get()
    assert (stored.success, stored.resolved_ip, stored.latency_ms) == (False, "", None)
    assert stored.details.get("error", stored.details.get("error_details")) in ("dns: NXDOMAIN", {"errors": ["dns"]})


@pytest.mark.parametrize("error", [5, ["a"], {"b": 1}, "x" * 10_001])
def test_a_string_error_must_be_a_string(client, agent, endpoint, error):
    result = {**SAMPLES["tcpconnect"], "error": error}
    body = ingest(client, agent, [result_item(agent.pk, endpoint.pk, "tcpconnect", result)])

    assert [rejection["error"] for rejection in body["rejected"]] == ["validation_error"]
    assert "check_type.result.error" in body["rejected"][0]["message"]
