"""Alerting end to end, through the public surface only: agents post results to the agent API, an
operator adds a webhook channel and a rule through the management API, `run_alerts --once` runs as
cron would, and a receiver on 127.0.0.1 gets one signed notification per state change."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from tests.alerting.fleet import KEYS, Fleet
from tests.alerting.receiver import Receiver
from tests.factories import EndpointFactory
from tests.results import agent_with_key

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)
SECRET = "hook-secret-0123456789"


@pytest.fixture
def private_targets(settings):
    settings.SMOTRA = replace(settings.SMOTRA, alerts=replace(settings.SMOTRA.alerts, allow_private_targets=True))


@pytest.fixture
def receiver():
    with Receiver() as receiver:
        yield receiver


def run_alerts(at: datetime) -> str:
    out = StringIO()
    with time_machine.travel(at, tick=False):
        call_command("run_alerts", "--once", stdout=out)
    return out.getvalue()


def test_one_signed_notification_per_state_change(api_client, client_for, alice, section_a, receiver, private_targets):
    agents = [agent_with_key(section_a, key=KEYS[n], name=f"agent-{n}") for n in range(3)]
    endpoints = [EndpointFactory(section=section_a, address=f"target-{n}.example.net") for n in range(2)]
    fleet = Fleet(api_client, section_a, agents, endpoints)
    with time_machine.travel(NOW - timedelta(minutes=5), tick=False):
        admin = client_for(alice)  # a token issued before the times the test moves to
    channel = admin.post(
        "/api/v1/channels",
        {"name": "hook", "type": "webhook", "configuration": {"url": f"{receiver.url}/hook", "secret": SECRET}},
        format="json",
    )
    assert channel.status_code == 201, channel.content
    rule = admin.post(
        "/api/v1/alert-rules",
        {
            "name": "down",
            "severity": "critical",
            "condition": {
                "metric": "status",
                "operator": "equals",
                "threshold": 0,
                "window_seconds": 60,
                "duration_seconds": 60,
            },
            "quorum": {"min_agents": 1, "min_percent": 50},
            "notifications": [channel.json()["id"]],
            "cooldown_seconds": 0,
        },
        format="json",
    )
    assert rule.status_code == 201, rule.content

    fleet.round(NOW, failing={0: {1}, 1: {1}})
    run_alerts(NOW)
    assert receiver.requests == []  # 0 s of the 60 it must hold
    fleet.round(NOW + timedelta(minutes=1), failing={0: {1}, 1: {1}})
    assert "1 opened" in run_alerts(NOW + timedelta(minutes=1))

    [opened] = receiver.requests
    body = opened.json()
    assert body["event"] == "alert.opened" and body["rule"] == {"id": rule.json()["id"], "name": "down"}
    assert body["alert"]["target"] == "target-1.example.net" and body["alert"]["status"] == "active"
    assert sorted(body["alert"]["failing_agents"]) == sorted(str(agents[n].pk) for n in (0, 1))
    assert body["alert"]["ok_agents"] == [str(agents[2].pk)]
    assert opened.headers["idempotency-key"] == body["idempotency_key"]
    signature = "sha256=" + hmac.new(SECRET.encode(), opened.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(opened.headers["x-smotra-signature"], signature)

    incident_id = body["alert"]["id"]
    with time_machine.travel(NOW + timedelta(minutes=1, seconds=10), tick=False):
        acknowledged = admin.post(f"/api/v1/alerts/{incident_id}/acknowledge", {"note": "on it"}, format="json")
    assert acknowledged.status_code == 200, acknowledged.content
    run_alerts(NOW + timedelta(minutes=1, seconds=20))
    assert [request.json()["event"] for request in receiver.requests] == ["alert.opened", "alert.acknowledged"]

    for minute in (2, 3, 4):  # healthy again: resolved once the condition has been false for 60 s
        fleet.round(NOW + timedelta(minutes=minute))
        run_alerts(NOW + timedelta(minutes=minute))
    events = [request.json()["event"] for request in receiver.requests]
    assert events == ["alert.opened", "alert.acknowledged", "alert.resolved"]
    assert len({request.headers["idempotency-key"] for request in receiver.requests}) == 3
    detail = admin.get(f"/api/v1/alerts/{incident_id}").json()
    assert detail["status"] == "resolved" and detail["acknowledged_by"] == alice.username


def test_metrics_show_open_incidents_evaluations_and_notifications(client, fleet_with_rule):
    fleet_with_rule.round(NOW, failing={0: {0}, 1: {0}})
    run_alerts(NOW)
    text = client.get("/metrics").content.decode()
    assert 'smotra_alerts_open{severity="critical"} 1.0' in text
    assert 'smotra_alerts_open{severity="warning"} 0.0' in text
    assert "smotra_alert_evaluation_seconds_count" in text
    assert 'smotra_notifications_total{channel_type="webhook",outcome="delivered"}' in text


@pytest.fixture
def fleet_with_rule(api_client, section_a, tenant_a, receiver, private_targets):
    from alerting.models import AlertRule, Channel

    agents = [agent_with_key(section_a, key=KEYS[n], name=f"agent-{n}") for n in range(3)]
    fleet = Fleet(api_client, section_a, agents, [EndpointFactory(section=section_a, address="target.example.net")])
    channel = Channel.objects.create(tenant=tenant_a, name="hook", type="webhook", configuration={"url": receiver.url})
    rule = AlertRule.objects.create(tenant=tenant_a, name="down", severity="critical", metric="status")
    rule.channels.add(channel)
    return fleet
