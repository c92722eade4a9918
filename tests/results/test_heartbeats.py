"""``POST {prefix}/agent/{id}/heartbeat`` (contract §6.2): both shapes, 204, vitals, last seen."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import DatabaseError, OperationalError, connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from agents.models import Agent
from results.models import Heartbeat
from tests.results import KEY, OTHER_KEY, agent_with_key, key_header

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

FLAT = {
    "timestamp": "2025-06-01T11:59:58.987654321Z",
    "status": "degraded",
    "cpu_usage_percent": 12.5,
    "memory_usage_mb": 48.25,
    "memory_total_mb": 16384,
    "system_uptime_secs": 864000,
}

AGENT_STATUS = {
    "agent_version": "0.9.1",
    "config_version": 3,
    "is_running": True,
    "started_at": "2025-06-01T11:00:00Z",
    "stopped_at": None,
    "checks_performed": 120,
    "checks_successful": 118,
    "checks_failed": 2,
    "reported_at": "2025-06-01T11:59:00.5Z",
    "failed_report_count": 0,
    "server_connected": True,
    "cache_stats": {"len": 5, "capacity": 10000},
}

NESTED = {
    "timestamp": "2025-06-01T11:59:59.000000001Z",
    "health_status": "healthy",
    "metrics": {
        "agent_uptime_secs": 3600,
        "cpu_usage_percent": 0.75,
        "memory_usage_mb": 31.5,
        "memory_total_mb": 7936.125,
        "system_uptime_secs": 4294967296000,
    },
    "agent_status": AGENT_STATUS,
}


@pytest.fixture
def agent(section_a):
    return agent_with_key(section_a, name="probe", agent_version="0.9.0")


def url(agent, prefix: str = "/v1") -> str:
    return f"{prefix}/agent/{agent.pk}/heartbeat"


def send(client, agent, body, key: str = KEY, prefix: str = "/v1"):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(url(agent, prefix), data=data, content_type="application/json", **key_header(key))


def reloaded(agent) -> Agent:
    return Agent.objects.get(pk=agent.pk)


def vitals(heartbeat: Heartbeat) -> dict:
    names = ["cpu_usage_percent", "memory_usage_mb", "memory_total_mb", "system_uptime_secs", "agent_uptime_secs"]
    return {name: getattr(heartbeat, name) for name in names}


# ---------------------------------------------------------------------------------------------
# Both shapes


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_it_stores_the_flat_shape_and_answers_204_with_an_empty_body(client, agent, prefix):
    with time_machine.travel(NOW, tick=False):
        response = send(client, agent, FLAT, prefix=prefix)

    assert response.status_code == 204
    assert response.content == b""
    heartbeat = Heartbeat.objects.get(agent=agent)
    assert vitals(heartbeat) == {
        "cpu_usage_percent": 12.5,
        "memory_usage_mb": 48.25,
        "memory_total_mb": 16384.0,
        "system_uptime_secs": 864000,
        "agent_uptime_secs": None,
    }
    assert heartbeat.health_status == "degraded"
    # Nine fractional digits are accepted; the database keeps microseconds.
    assert heartbeat.timestamp == datetime(2025, 6, 1, 11, 59, 58, 987654, tzinfo=UTC)
    assert heartbeat.received_at == NOW
    assert heartbeat.agent_status is None
    assert reloaded(agent).agent_version == "0.9.0"


def test_it_stores_the_nested_shape_and_answers_204_with_an_empty_body(client, agent):
    with time_machine.travel(NOW, tick=False):
        response = send(client, agent, NESTED)

    assert response.status_code == 204
    assert response.content == b""
    heartbeat = Heartbeat.objects.get(agent=agent)
    assert vitals(heartbeat) == {
        "cpu_usage_percent": 0.75,
        "memory_usage_mb": 31.5,
        "memory_total_mb": 7936.125,
        "system_uptime_secs": 4294967296000,
        "agent_uptime_secs": 3600,
    }
    assert heartbeat.health_status == "healthy"
    assert heartbeat.timestamp == datetime(2025, 6, 1, 11, 59, 59, tzinfo=UTC)
    assert heartbeat.agent_status == AGENT_STATUS


def test_the_nested_shape_updates_the_agents_version(client, agent):
    body = {**NESTED, "agent_status": {**AGENT_STATUS, "agent_version": "1.0.0-rc.1"}}

    assert send(client, agent, body).status_code == 204

    assert reloaded(agent).agent_version == "1.0.0-rc.1"


@pytest.mark.parametrize(
    "body",
    [
        {"health_status": "healthy", "metrics": {}, "agent_status": None},
        {"health_status": "healthy", "metrics": {"cpu_usage_percent": None}, "agent_status": {}},
        {"metrics": {"cpu_usage_percent": 3}},
        {"status": "healthy"},
        {},
    ],
    ids=["nested_empty_metrics", "nested_nulls", "nested_without_health", "flat_status_only", "empty_object"],
)
def test_it_accepts_sparse_heartbeats(client, agent, body):
    assert send(client, agent, body).status_code == 204

    assert Heartbeat.objects.filter(agent=agent).count() == 1
    assert reloaded(agent).agent_version == "0.9.0"


@pytest.mark.parametrize("timestamp", [None, "absent"])
def test_a_missing_timestamp_is_the_receive_time(client, agent, timestamp):
    body = {key: value for key, value in FLAT.items() if key != "timestamp"}
    if timestamp != "absent":
        body["timestamp"] = timestamp

    with time_machine.travel(NOW, tick=False):
        assert send(client, agent, body).status_code == 204

    heartbeat = Heartbeat.objects.get(agent=agent)
    assert heartbeat.timestamp == NOW
    assert heartbeat.received_at == NOW


def test_a_version_change_within_the_resolution_writes_only_the_version(client, agent):
    with time_machine.travel(NOW, tick=False) as clock:
        send(client, agent, FLAT)
        clock.shift(timedelta(seconds=1))
        send(client, agent, NESTED)

    fresh = reloaded(agent)
    assert (fresh.agent_version, fresh.last_seen_at) == ("0.9.1", NOW)


def test_it_keeps_a_history_of_vitals(client, agent):
    for cpu in (1.0, 2.0, 3.0):
        assert send(client, agent, {**FLAT, "cpu_usage_percent": cpu, "timestamp": None}).status_code == 204

    assert sorted(Heartbeat.objects.filter(agent=agent).values_list("cpu_usage_percent", flat=True)) == [1.0, 2.0, 3.0]


def test_it_accepts_an_offset_timestamp_and_stores_it_as_utc(client, agent):
    assert send(client, agent, {**FLAT, "timestamp": "2025-06-01T14:00:00+02:00"}).status_code == 204

    assert Heartbeat.objects.get(agent=agent).timestamp == NOW


# ---------------------------------------------------------------------------------------------
# Last seen


def test_it_sets_last_seen(client, agent):
    assert agent.last_seen_at is None

    with time_machine.travel(NOW, tick=False):
        send(client, agent, FLAT)

    assert reloaded(agent).last_seen_at == NOW


def test_it_writes_last_seen_at_most_once_per_resolution(client, agent, settings):
    assert settings.SMOTRA.agent.last_seen_resolution == 5
    with time_machine.travel(NOW, tick=False) as clock:
        send(client, agent, FLAT)
        assert reloaded(agent).last_seen_at == NOW

        clock.shift(timedelta(seconds=4.9))
        assert send(client, agent, FLAT).status_code == 204
        assert reloaded(agent).last_seen_at == NOW

        clock.shift(timedelta(seconds=0.1))
        send(client, agent, FLAT)
        assert reloaded(agent).last_seen_at == NOW + timedelta(seconds=5)

    assert Heartbeat.objects.filter(agent=agent).count() == 3


def test_a_heartbeat_is_one_round_trip_on_postgresql(client, agent):
    """The key check, the vitals row and the last-seen bookkeeping are one statement there; SQLite
    (no round trips) takes the insert and the conditional update as two."""
    with time_machine.travel(NOW, tick=False) as clock:
        send(client, agent, FLAT)
        clock.shift(timedelta(seconds=2))
        with CaptureQueriesContext(connection) as queries:
            assert send(client, agent, FLAT).status_code == 204

    statements = [query["sql"].split()[0].upper() for query in queries]
    statements = [word for word in statements if word not in ("SAVEPOINT", "RELEASE")]  # SQLite's atomic
    assert statements == (["WITH"] if connection.vendor == "postgresql" else ["INSERT", "UPDATE"]), statements
    assert reloaded(agent).last_seen_at == NOW
    assert Heartbeat.objects.filter(agent=agent).count() == 2


@pytest.mark.parametrize(("error", "status"), [(OperationalError, 503), (DatabaseError, 500)])
def test_a_heartbeat_whose_statement_fails_is_never_acknowledged(client, agent, error, status):
    """The statement runs, then the database fails it (a lost connection, a failed commit): the
    agent sees an error, never a 204, and keeps its heartbeat for the next try."""

    def fail_after(execute, sql, params, many, context):
        execute(sql, params, many, context)
        raise error("the database went away")

    client.raise_request_exception = False
    with connection.execute_wrapper(fail_after):
        response = send(client, agent, FLAT)

    assert response.status_code == status
    assert response.json()["error"] in {"service_unavailable", "internal_error"}


@pytest.mark.parametrize("shape", [FLAT, NESTED])
def test_a_refused_heartbeat_asks_whose_key_it_is_before_answering(client, agent, section_b, assert_error, shape):
    """A body refused with a wrong key is a 401, with another agent's key a 403: the statement that
    stores nothing is followed by the key lookup, and nothing is written."""
    stranger = agent_with_key(section_b, key=OTHER_KEY, name="stranger")
    bad = {**shape, "timestamp": "yesterday"}
    assert_error(send(client, agent, bad, key="smk_wrong"), 401, "unauthorized")
    assert_error(send(client, agent, bad, key=OTHER_KEY), 403, "forbidden")
    assert_error(send(client, agent, shape, key=OTHER_KEY), 403, "forbidden")
    assert_error(send(client, agent, bad), 400, "validation_error", field="timestamp")
    assert not Heartbeat.objects.exists()
    assert reloaded(stranger).last_seen_at is None and reloaded(agent).last_seen_at is None


# ---------------------------------------------------------------------------------------------
# Refusals


BAD_BODIES = [
    pytest.param({**FLAT, "cpu_usage_percent": "12.5"}, "cpu_usage_percent", id="string_for_number"),
    pytest.param({**FLAT, "memory_usage_mb": -1}, "memory_usage_mb", id="negative"),
    pytest.param({**FLAT, "memory_total_mb": True}, "memory_total_mb", id="boolean_for_number"),
    pytest.param({**FLAT, "system_uptime_secs": 1.5}, "system_uptime_secs", id="fraction_for_integer"),
    pytest.param({**FLAT, "system_uptime_secs": 1e300}, "system_uptime_secs", id="huge"),
    pytest.param({**FLAT, "status": 1}, "status", id="number_for_status"),
    pytest.param({**FLAT, "timestamp": "yesterday"}, "timestamp", id="bad_timestamp"),
    pytest.param({**FLAT, "timestamp": "2025-06-01T12:00:00"}, "timestamp", id="timestamp_without_zone"),
    pytest.param({**FLAT, "timestamp": 1748779200}, "timestamp", id="epoch_timestamp"),
    pytest.param({**FLAT, "timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp", id="timestamp_before_year_1"),
    pytest.param({**NESTED, "health_status": ["healthy"]}, "health_status", id="list_for_health"),
    pytest.param({**NESTED, "metrics": [1, 2]}, "metrics", id="list_for_metrics"),
    pytest.param({"metrics": "none"}, "metrics", id="string_for_metrics_without_health"),
    pytest.param({"agent_status": [], "timestamp": None}, "agent_status", id="list_for_agent_status_alone"),
    pytest.param(
        {**NESTED, "metrics": {**NESTED["metrics"], "cpu_usage_percent": "high"}},
        "metrics.cpu_usage_percent",
        id="nested_string_for_number",
    ),
    pytest.param(
        {**NESTED, "metrics": {**NESTED["metrics"], "agent_uptime_secs": -5}},
        "metrics.agent_uptime_secs",
        id="nested_negative",
    ),
    pytest.param({**NESTED, "agent_status": "running"}, "agent_status", id="string_for_agent_status"),
    pytest.param(
        {**NESTED, "agent_status": {**AGENT_STATUS, "checks_performed": "120"}},
        "agent_status.checks_performed",
        id="agent_status_string_counter",
    ),
    pytest.param(
        {**NESTED, "agent_status": {**AGENT_STATUS, "is_running": "yes"}},
        "agent_status.is_running",
        id="agent_status_string_boolean",
    ),
    pytest.param(
        {**NESTED, "agent_status": {**AGENT_STATUS, "started_at": "today"}},
        "agent_status.started_at",
        id="agent_status_bad_time",
    ),
    pytest.param(
        {**NESTED, "agent_status": {**AGENT_STATUS, "cache_stats": {"len": True, "capacity": 1}}},
        "agent_status.cache_stats.len",
        id="cache_stats_boolean",
    ),
    pytest.param(
        {**NESTED, "agent_status": {**AGENT_STATUS, "agent_version": 1.0}},
        "agent_status.agent_version",
        id="number_for_version",
    ),
    pytest.param({**FLAT, "status": "ok\u0000"}, "body", id="nul_in_status"),
    pytest.param({**NESTED, "agent_status": {**AGENT_STATUS, "note": ["\u0000"]}}, "body", id="nul_in_agent_status"),
    pytest.param([FLAT], "body", id="array_body"),
    pytest.param("healthy", "body", id="string_body"),
    pytest.param(42, "body", id="number_body"),
    pytest.param(None, "body", id="null_body"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_it_refuses_wrong_types_and_stores_nothing(client, agent, assert_error, body, field):
    body = assert_error(send(client, agent, body), 400, "validation_error", field=field)

    assert field == "body" or field in body["message"]
    assert not Heartbeat.objects.exists()
    fresh = reloaded(agent)
    assert fresh.last_seen_at is None
    assert fresh.agent_version == "0.9.0"


@pytest.mark.parametrize(
    "raw", [b"{", b"{'status': 'healthy'}", b'{"cpu_usage_percent": NaN}', b'{"cpu_usage_percent": 1e999}', b"\xff"]
)
def test_it_refuses_malformed_json(client, agent, assert_error, raw):
    assert_error(send(client, agent, raw), 400, "invalid_json")

    assert not Heartbeat.objects.exists()


def test_it_answers_401_without_a_key_even_for_a_bad_body(client, agent, assert_error):
    response = client.post(url(agent), data=b"{not json", content_type="application/json")

    assert_error(response, 401, "unauthorized")
    assert not Heartbeat.objects.exists()


def test_it_answers_401_for_a_wrong_key(client, agent, assert_error):
    assert_error(send(client, agent, FLAT, key="smk_wrong"), 401, "unauthorized")

    assert not Heartbeat.objects.exists()


def test_it_answers_403_on_another_agents_path(client, agent, section_b, assert_error):
    stranger = agent_with_key(section_b, key=OTHER_KEY, name="stranger")

    assert_error(send(client, agent, FLAT, key=OTHER_KEY), 403, "forbidden")

    assert not Heartbeat.objects.exists()
    assert reloaded(agent).last_seen_at is None
    assert reloaded(stranger).last_seen_at is None


def failures(reason: str) -> float:
    return REGISTRY.get_sample_value("smotra_agent_auth_failures_total", {"reason": reason}) or 0.0


@pytest.mark.parametrize("method", ["get", "options", "put"])
def test_any_method_without_a_key_is_a_401(client, agent, assert_error, method):
    before = failures("missing")

    assert_error(getattr(client, method)(url(agent)), 401, "unauthorized")

    assert failures("missing") == before + 1


@pytest.mark.parametrize("body", [FLAT, {**FLAT, "timestamp": "yesterday"}])
def test_a_revoked_or_rotated_key_is_refused_at_once(client, agent, assert_error, body):
    from agents.services.keys import agent_key_rotate, agent_revoke
    from tenants.services import Actor

    assert send(client, agent, FLAT).status_code == 204
    new_key = agent_key_rotate(actor=Actor.cli(), agent=reloaded(agent))
    assert_error(send(client, agent, body), 401, "unauthorized")  # the old key
    assert send(client, agent, FLAT, key=new_key).status_code == 204
    agent_revoke(actor=Actor.cli(), agent=reloaded(agent))
    before = failures("invalid")

    assert_error(send(client, agent, body, key=new_key), 401, "unauthorized")

    assert failures("invalid") == before + 1  # counted once, though the key was read twice
    assert Heartbeat.objects.filter(agent=agent).count() == 2


def test_a_refused_heartbeat_logs_the_keys_agent(client, agent, caplog):
    with caplog.at_level(logging.INFO, logger="smotra.access"):
        send(client, agent, {**FLAT, "timestamp": "yesterday"})

    [line] = [record for record in caplog.records if record.name == "smotra.access"]
    assert (line.status, line.principal) == (400, f"agent:{agent.pk}")


def test_it_refuses_get(client, agent, assert_error):
    assert_error(client.get(url(agent), **key_header()), 405, "method_not_allowed")


@pytest.mark.parametrize("route", ["heartbeat", "report", "results"])
def test_it_refuses_an_empty_body_instead_of_storing_nulls(client, agent, route):
    response = client.post(f"/v1/agent/{agent.pk}/{route}", b"", content_type="application/json", **key_header(KEY))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    assert Heartbeat.objects.count() == 0
