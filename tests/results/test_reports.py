"""``POST {prefix}/agent/{id}/report`` (contract §6.3): the agent's latest status, 202."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from agents.models import Agent
from results.models import AgentStatusReport
from tests.results import KEY, OTHER_KEY, agent_with_key, key_header

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

REPORT = {
    "agent_version": "0.9.1",
    "config_version": 7,
    "is_running": True,
    "started_at": "2025-06-01T10:30:00.123456789Z",
    "stopped_at": None,
    "checks_performed": 5000,
    "checks_successful": 4990,
    "checks_failed": 10,
    "reported_at": "2025-06-01T11:59:59Z",
    "failed_report_count": 2,
    "server_connected": True,
    "cache_stats": {"len": 42, "capacity": 10000},
}


@pytest.fixture
def agent(section_a):
    return agent_with_key(section_a, name="probe", agent_version="0.9.0")


def send(client, agent, body, key: str = KEY, prefix: str = "/v1"):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(
        f"{prefix}/agent/{agent.pk}/report", data=data, content_type="application/json", **key_header(key)
    )


def report_fields(report: AgentStatusReport) -> dict:
    names = [
        "agent_version",
        "config_version",
        "is_running",
        "started_at",
        "stopped_at",
        "checks_performed",
        "checks_successful",
        "checks_failed",
        "reported_at",
        "failed_report_count",
        "server_connected",
        "cache_len",
        "cache_capacity",
    ]
    return {name: getattr(report, name) for name in names}


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_it_stores_the_report_and_answers_202_with_the_receive_time(client, agent, prefix):
    with time_machine.travel(NOW, tick=False):
        response = send(client, agent, REPORT, prefix=prefix)

    assert response.status_code == 202
    assert response.json().keys() == {"received_at"}
    assert datetime.fromisoformat(response.json()["received_at"]) == NOW
    report = AgentStatusReport.objects.get(agent=agent)
    assert report.received_at == NOW
    assert report_fields(report) == {
        "agent_version": "0.9.1",
        "config_version": 7,
        "is_running": True,
        "started_at": datetime(2025, 6, 1, 10, 30, 0, 123456, tzinfo=UTC),
        "stopped_at": None,
        "checks_performed": 5000,
        "checks_successful": 4990,
        "checks_failed": 10,
        "reported_at": datetime(2025, 6, 1, 11, 59, 59, tzinfo=UTC),
        "failed_report_count": 2,
        "server_connected": True,
        "cache_len": 42,
        "cache_capacity": 10000,
    }


def test_it_updates_the_agents_version_and_last_seen(client, agent):
    with time_machine.travel(NOW, tick=False):
        send(client, agent, REPORT)

    fresh = Agent.objects.get(pk=agent.pk)
    assert (fresh.agent_version, fresh.last_seen_at) == ("0.9.1", NOW)


def test_a_second_report_replaces_the_first(client, agent):
    with time_machine.travel(NOW, tick=False) as clock:
        send(client, agent, REPORT)
        first_id = AgentStatusReport.objects.get(agent=agent).pk
        clock.shift(timedelta(minutes=5))
        later = {**REPORT, "checks_performed": 5100, "is_running": False, "stopped_at": "2025-06-01T12:04:00Z"}
        later.pop("cache_stats")
        response = send(client, agent, later)

    assert response.status_code == 202
    report = AgentStatusReport.objects.get(agent=agent)
    assert AgentStatusReport.objects.count() == 1
    assert report.pk == first_id
    assert report.received_at == NOW + timedelta(minutes=5)
    assert (report.checks_performed, report.is_running) == (5100, False)
    assert report.stopped_at == datetime(2025, 6, 1, 12, 4, tzinfo=UTC)
    assert (report.cache_len, report.cache_capacity) == (None, None)


def test_each_agent_keeps_its_own_report(client, agent, section_a):
    neighbour = agent_with_key(section_a, key=OTHER_KEY, name="neighbour")

    send(client, agent, REPORT)
    send(client, neighbour, {**REPORT, "checks_performed": 1}, key=OTHER_KEY)

    performed = dict(AgentStatusReport.objects.values_list("agent_id", "checks_performed"))
    assert performed == {agent.pk: 5000, neighbour.pk: 1}


def test_it_accepts_a_report_of_nulls(client, agent):
    response = send(client, agent, dict.fromkeys(REPORT))

    assert response.status_code == 202
    report = AgentStatusReport.objects.get(agent=agent)
    assert report.agent_version == ""
    assert Agent.objects.get(pk=agent.pk).agent_version == "0.9.0"


BAD_REPORTS = [
    pytest.param({**REPORT, "checks_performed": "5000"}, "checks_performed", id="string_counter"),
    pytest.param({**REPORT, "checks_failed": -1}, "checks_failed", id="negative_counter"),
    pytest.param({**REPORT, "failed_report_count": 1.5}, "failed_report_count", id="fractional_counter"),
    pytest.param({**REPORT, "checks_successful": True}, "checks_successful", id="boolean_counter"),
    pytest.param({**REPORT, "is_running": 1}, "is_running", id="number_for_boolean"),
    pytest.param({**REPORT, "server_connected": "true"}, "server_connected", id="string_for_boolean"),
    pytest.param({**REPORT, "started_at": "10:30"}, "started_at", id="bad_time"),
    pytest.param({**REPORT, "reported_at": "2025-06-01T12:00:00"}, "reported_at", id="time_without_zone"),
    pytest.param({**REPORT, "stopped_at": "9999-12-31T23:59:59-01:00"}, "stopped_at", id="time_after_9999"),
    pytest.param({**REPORT, "agent_version": ["0.9"]}, "agent_version", id="list_for_version"),
    pytest.param({**REPORT, "agent_version": "v" * 101}, "agent_version", id="version_too_long"),
    pytest.param({**REPORT, "cache_stats": [42, 10000]}, "cache_stats", id="list_for_cache_stats"),
    pytest.param({**REPORT, "cache_stats": {"len": "42"}}, "cache_stats.len", id="string_cache_len"),
    pytest.param({**REPORT, "cache_stats": {"capacity": -1}}, "cache_stats.capacity", id="negative_capacity"),
    pytest.param({**REPORT, "agent_version": "0.9\u0000"}, "body", id="nul_in_version"),
    pytest.param([REPORT], "body", id="array_body"),
    pytest.param("ok", "body", id="string_body"),
]


@pytest.mark.parametrize(("body", "field"), BAD_REPORTS)
def test_it_refuses_wrong_types_and_keeps_the_previous_report(client, agent, assert_error, body, field):
    with time_machine.travel(NOW, tick=False):
        send(client, agent, REPORT)
    before = report_fields(AgentStatusReport.objects.get(agent=agent))

    assert_error(send(client, agent, body), 400, "validation_error", field=field)

    assert AgentStatusReport.objects.count() == 1
    report = AgentStatusReport.objects.get(agent=agent)
    assert report_fields(report) == before
    assert report.received_at == NOW


def test_it_refuses_malformed_json(client, agent, assert_error):
    assert_error(send(client, agent, b'{"checks_performed": 1'), 400, "invalid_json")

    assert not AgentStatusReport.objects.exists()


def test_it_answers_401_without_a_key_even_for_a_bad_body(client, agent, assert_error):
    response = client.post(f"/v1/agent/{agent.pk}/report", data=b"]", content_type="application/json")

    assert_error(response, 401, "unauthorized")
    assert not AgentStatusReport.objects.exists()


def test_it_answers_403_on_another_agents_path(client, agent, section_b, assert_error):
    agent_with_key(section_b, key=OTHER_KEY, name="stranger")

    assert_error(send(client, agent, REPORT, key=OTHER_KEY), 403, "forbidden")
    assert not AgentStatusReport.objects.exists()
