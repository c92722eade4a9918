"""The evaluator through the agent API: agents post results, time moves (time-machine), a pass runs,
and incidents, their history and the outbox say what happened."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, connections

from alerting.evaluation import evaluate
from alerting.models import AlertRule, Channel, Incident, IncidentEvent, MaintenanceWindow, Notification
from tests.alerting.fleet import KEYS, Fleet
from tests.factories import EndpointFactory
from tests.results import agent_with_key

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def fleet(api_client, section_a):
    agents = [agent_with_key(section_a, key=KEYS[n], name=f"agent-{n}") for n in range(3)]
    endpoints = [EndpointFactory(section=section_a, address=f"target-{n}.example.net") for n in range(4)]
    return Fleet(api_client, section_a, agents, endpoints)


@pytest.fixture
def channel(tenant_a):
    return Channel.objects.create(
        tenant=tenant_a, name="ops hook", type="webhook", configuration={"url": "http://example.invalid/hook"}
    )


def rule_of(tenant, channel=None, **fields) -> AlertRule:
    values = {"name": "down", "severity": "critical", "metric": "status", "window_seconds": 300}
    rule = AlertRule.objects.create(tenant=tenant, **(values | fields))
    if channel is not None:
        rule.channels.add(channel)
    return rule


def run(at: datetime):
    with time_machine.travel(at, tick=False):
        return evaluate(now=at)


def events(incident: Incident) -> list[str]:
    return list(incident.events.values_list("kind", flat=True))


def sent(event: str | None = None):
    rows = Notification.objects.exclude(status="suppressed")
    return rows.filter(event=event) if event else rows


def test_quorum_one_of_three_agents_is_not_enough_two_are(fleet, tenant_a, channel):
    rule = rule_of(tenant_a, channel, quorum_min_agents=1, quorum_min_percent=50)
    fleet.round(NOW, failing={0: {1}})
    run(NOW)
    assert not Incident.objects.filter(kind="endpoint").exists()

    later = NOW + timedelta(minutes=6)  # past the 5-minute window of the first round
    fleet.round(later, failing={0: {1}, 1: {1}})
    run(later)
    incident = Incident.objects.get(kind="endpoint")
    assert (incident.rule, incident.endpoint, incident.status) == (rule, fleet.endpoints[1], "active")
    assert incident.failing_agents == sorted(str(fleet.agents[n].pk) for n in (0, 1))
    assert incident.ok_agents == [str(fleet.agents[2].pk)]
    assert incident.target == "target-1.example.net" and incident.title == "target-1.example.net is unreachable"
    assert sent("alert.opened").count() == 1


def test_duration_must_hold_before_opening_and_before_resolving(fleet, tenant_a, channel):
    rule_of(tenant_a, channel, quorum_min_agents=1, quorum_min_percent=0, duration_seconds=120, window_seconds=60)
    for minute in range(3):  # failing at 0, 1, 2 minutes: 120 s reached at the third pass
        at = NOW + timedelta(minutes=minute)
        fleet.round(at, failing={0: {0}, 1: {0}, 2: {0}})
        run(at)
        assert Incident.objects.filter(kind="endpoint").exists() == (minute == 2), minute
    assert sent().count() == 1
    for minute in range(3, 7):  # fine from minute 3 (a success in the window): resolved 120 s later
        at = NOW + timedelta(minutes=minute)
        fleet.round(at)
        run(at)
    incident = Incident.objects.get(kind="endpoint")
    assert incident.status == "resolved" and incident.resolved_at == NOW + timedelta(minutes=5)
    assert events(incident) == ["opened", "notified", "resolved", "notified"]
    assert [n.event for n in sent().order_by("created_at")] == ["alert.opened", "alert.resolved"]


def test_a_latency_percentile_rule_reads_the_merged_histograms(fleet, tenant_a, channel):
    rule_of(
        tenant_a,
        channel,
        metric="response_time_ms",
        aggregation="p95",
        operator="greater_than",
        threshold=100,
        quorum_min_agents=2,
        quorum_min_percent=0,
    )
    for minute in range(3):  # endpoint 0: slow for agents 0 and 1 (a few fast samples too), fine elsewhere
        at = NOW + timedelta(minutes=minute)
        fleet.round(at)
        for agent in (0, 1):
            fleet.report(agent, 0, True, at + timedelta(seconds=5), latencies=[150.0, 180.0, 210.0])
    run(NOW + timedelta(minutes=2, seconds=10))
    incident = Incident.objects.get(kind="endpoint")
    assert incident.endpoint == fleet.endpoints[0] and incident.title == "target-0.example.net: p95 response time > 100"
    assert incident.failing_agents == sorted(str(fleet.agents[n].pk) for n in (0, 1))
    assert incident.current_value == pytest.approx(210.0, rel=0.02)


def test_one_agent_failing_everything_is_its_network_not_the_targets(fleet, tenant_a, channel):
    rule_of(tenant_a, channel, quorum_min_agents=1, quorum_min_percent=0)
    fleet.round(NOW, failing={0: {0, 1, 2, 3}})
    run(NOW)
    incident = Incident.objects.get()
    assert (incident.kind, incident.agent, incident.endpoint) == ("agent_network", fleet.agents[0], None)
    assert "agent-0" in incident.title and sent().count() == 1


def test_an_offline_agent_opens_agent_offline_and_its_stale_failures_hold_nothing_open(fleet, tenant_a, channel):
    rule = rule_of(tenant_a, channel, quorum_min_agents=1, quorum_min_percent=0, window_seconds=3600)
    offline_rule = AlertRule.objects.get(tenant=tenant_a, builtin="agent_offline")
    fleet.round(NOW, failing={0: {0}})
    run(NOW)
    endpoint_incident = Incident.objects.get(rule=rule)
    assert endpoint_incident.kind == "endpoint" and endpoint_incident.failing_agents == [str(fleet.agents[0].pk)]

    later = NOW + timedelta(minutes=16)  # agent 0 silent past agent.offline_after; the others report
    fleet.round(later, agents=[1, 2])
    run(later)
    endpoint_incident.refresh_from_db()
    assert endpoint_incident.status == "resolved"
    offline = Incident.objects.get(rule=offline_rule)
    assert (offline.kind, offline.agent, offline.status) == ("agent_offline", fleet.agents[0], "active")
    assert Incident.objects.filter(status="active").count() == 1


def test_maintenance_opens_and_resolves_quietly(fleet, tenant_a, channel):
    rule_of(tenant_a, channel, quorum_min_agents=1, quorum_min_percent=0, window_seconds=60)
    MaintenanceWindow.objects.create(
        tenant=tenant_a,
        name="upgrade",
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW + timedelta(minutes=30),
        endpoint_ids=[str(fleet.endpoints[2].pk)],
    )
    fleet.round(NOW, failing={0: {2}, 1: {2}})
    run(NOW)
    incident = Incident.objects.get(kind="endpoint")
    assert incident.in_maintenance and incident.last_notified_at is None
    later = NOW + timedelta(hours=2)  # the window is over, the incident opened in it: still quiet
    fleet.round(later)
    run(later)
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert not sent().exists() and Notification.objects.filter(status="suppressed").count() == 2


def test_reminders_follow_the_cooldown_until_acknowledged(fleet, tenant_a, channel):
    rule_of(tenant_a, channel, quorum_min_agents=1, quorum_min_percent=0, cooldown_seconds=600)
    for minute in (0, 5, 10, 15, 20):
        at = NOW + timedelta(minutes=minute)
        fleet.round(at, failing={0: {3}, 1: {3}, 2: {3}})
        run(at)
        if minute == 10:
            assert sent("alert.reminder").count() == 1
        if minute == 15:
            Incident.objects.filter(kind="endpoint").update(status="acknowledged")
    assert [n.event for n in sent().order_by("created_at")] == ["alert.opened", "alert.reminder"]


def test_switching_a_rule_off_resolves_its_incidents_quietly(fleet, tenant_a, channel):
    rule = rule_of(tenant_a, channel, quorum_min_agents=1, quorum_min_percent=0)
    fleet.round(NOW, failing={0: {0}})
    run(NOW)
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)
    run(NOW + timedelta(seconds=15))
    incident = Incident.objects.get(rule=rule)
    assert incident.status == "resolved" and events(incident)[-1] == "resolved"
    assert [n.event for n in sent()] == ["alert.opened"]


def test_summary_counts_open_incidents(fleet, tenant_a, client_for, alice, bob):
    rule_of(tenant_a, quorum_min_agents=1, quorum_min_percent=0)
    fleet.round(NOW, failing={0: {0}})
    run(NOW)
    with time_machine.travel(NOW, tick=False):
        assert client_for(alice).get("/api/v1/result/summary").json()["active_alerts"] == 1
        assert client_for(bob).get("/api/v1/result/summary").json()["active_alerts"] == 0


def test_every_tenant_has_an_editable_builtin_offline_rule(tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        rule = AlertRule.objects.get(tenant=tenant, builtin="agent_offline")
        assert rule.enabled and rule.metric == "agent_offline" and not rule.channels.exists()


@pytest.mark.django_db(transaction=True)
def test_two_evaluators_at_once_open_one_incident_and_one_notification(fleet, tenant_a, channel):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises every writer; concurrent evaluators need PostgreSQL")
    rule_of(tenant_a, channel, quorum_min_agents=1, quorum_min_percent=0)
    fleet.round(NOW, failing={0: {0}, 1: {0}, 2: {0}})
    barrier, errors = threading.Barrier(2), []

    def evaluator():
        try:
            barrier.wait()
            evaluate(now=NOW)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=evaluator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert Incident.objects.filter(kind="endpoint").count() == 1
    assert sent("alert.opened").count() == 1
    assert IncidentEvent.objects.filter(kind="opened").count() == 1


@pytest.mark.parametrize(
    ("percent", "agents", "needed"), [(28, 25, 7), (14, 50, 7), (50, 3, 2), (0, 3, 0), (100, 3, 3)]
)
def test_the_quorum_share_has_no_float_noise(percent, agents, needed):
    from alerting.evaluation import quorum_share

    assert quorum_share(percent, agents) == needed
