"""{prefix}/alerts: the incidents of the tenant (newest first, filtered), one with its history and
notifications, acknowledgement by operators; and POST /alerts, upstream's way to create a rule."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, connections

from alerting.documents import incident_document
from alerting.models import AlertRule, Incident, IncidentEvent, MaintenanceWindow, Notification
from alerting.services.incidents import incident_acknowledge
from smotra.errors import Conflict
from tenants.models import AuditEvent
from tenants.services import Actor
from tests.alerting import test_api_rules as rules_tests
from tests.alerting.objects import channel_of, incident_of, rule_of
from tests.api_cases import ResourceAPICases
from tests.factories import AgentFactory, EndpointFactory, MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/alerts"
NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _document(incident: Incident) -> dict:
    """What the API must answer: the incident document, as JSON."""
    incident = Incident.objects.select_related("acknowledged_by").get(pk=incident.pk)
    return json.loads(json.dumps(incident_document(incident)))


@pytest.fixture
def channels_a(tenant_a):
    """Two enabled channels and a disabled one."""
    return [
        channel_of(tenant_a, name="hook"),
        channel_of(tenant_a, "email", name="mail", recipients=["noc@example.com"]),
        channel_of(tenant_a, "slack", name="off", enabled=False, webhook_url="https://hooks.slack.com/services/T/B/x"),
    ]


@pytest.fixture
def rule_a(tenant_a, channels_a):
    return rule_of(tenant_a, channels=channels_a)


@pytest.fixture
def endpoint_a(section_a):
    return EndpointFactory(section=section_a, address="shop.example.org")


@pytest.fixture
def incident_a(rule_a, endpoint_a):
    return incident_of(rule_a, endpoint=endpoint_a, target="shop.example.org", threshold_value=500, current_value=812.5)


class TestAlertsAPI(ResourceAPICases):
    """401, cross-tenant, viewer, bad-input, pagination and verb cases (tests/api_cases.py).

    Incidents come from the evaluator: no PATCH or DELETE. POST creates a rule (as POST
    /alert-rules does), and operators acknowledge."""

    path = "/alerts"
    items_key = "alerts"
    model = Incident
    operations = ("list", "retrieve", "create")
    actions = ("acknowledge",)
    write_role = "operator"
    create_in_other_tenant = (400, "validation_error", "tenant_id")
    bad_bodies = rules_tests.TestAlertRulesAPI.bad_bodies  # the same body, the same refusals

    @pytest.fixture
    def object_a(self, incident_a):
        return incident_a

    @pytest.fixture
    def object_b(self, tenant_b):
        return incident_of(rule_of(tenant_b), title="bobs")

    @pytest.fixture
    def create_body(self, tenant_a, channels_a):
        return {
            "tenant_id": str(tenant_a.pk),
            "name": "Slow answers",
            "condition": dict(rules_tests.CONDITION),
            "notifications": [str(channels_a[0].pk)],
        }

    @pytest.fixture
    def placeholders(self, section_a, channels_a, section_b):
        return rules_tests.foreign_placeholders(section_a, section_b, channels_a[0])

    def test_the_write_role_may_write(self, client_for, oscar, create_body):
        """POST /alerts makes a rule, not an incident."""
        response = client_for(oscar).post(self.url, create_body, format="json")
        assert response.status_code == 201, response.content
        assert AlertRule.objects.filter(pk=response.json()["id"]).exists()
        assert not Incident.objects.exists()


# ---------------------------------------------------------------------------------------------
# Reading


def test_a_viewer_lists_incidents_as_their_documents_newest_first(client_for, vera, rule_a, incident_a):
    older = incident_of(rule_a, created_at=incident_a.created_at - timedelta(hours=1), status="resolved")
    newer = incident_of(rule_a, created_at=incident_a.created_at + timedelta(hours=1), kind="agent_offline")
    response = client_for(vera).get(URL)
    assert response.status_code == 200, response.content
    assert response.json()["alerts"] == [_document(newer), _document(incident_a), _document(older)]
    assert response.json()["pagination"]["total_items"] == 3


def test_the_detail_adds_history_and_notifications(client_for, vera, oscar, incident_a, channels_a):
    IncidentEvent.objects.create(incident=incident_a, at=incident_a.created_at, kind="opened", data={"value": 812.5})
    IncidentEvent.objects.create(
        incident=incident_a, at=incident_a.created_at + timedelta(minutes=5), kind="updated", actor=oscar, note="hm"
    )
    notification = Notification.objects.create(
        tenant=incident_a.tenant,
        incident=incident_a,
        channel=channels_a[0],
        event="alert.opened",
        payload={},
        status="delivered",
        attempts=1,
        next_attempt_at=incident_a.created_at,
        created_at=incident_a.created_at,
        delivered_at=incident_a.created_at + timedelta(seconds=2),
    )
    body = client_for(vera).get(f"{URL}/{incident_a.pk}").json()
    assert {key: value for key, value in body.items() if key not in ("history", "notifications")} == _document(
        incident_a
    )
    assert body["history"] == [
        {"at": "2026-01-01T12:00:00Z", "kind": "opened", "actor": None, "note": "", "data": {"value": 812.5}},
        {"at": "2026-01-01T12:05:00Z", "kind": "updated", "actor": "oscar", "note": "hm", "data": {}},
    ]
    assert body["notifications"] == [
        {
            "id": str(notification.pk),
            "channel_id": str(channels_a[0].pk),
            "event": "alert.opened",
            "status": "delivered",
            "attempts": 1,
            "delivered_at": "2026-01-01T12:00:02Z",
            "last_error": "",
        }
    ]


@pytest.fixture
def many(tenant_a, section_a, rule_a):
    """Incidents that differ in one filter each from ``base``."""
    other_rule = rule_of(tenant_a, name="Other")
    endpoint, agent = EndpointFactory(section=section_a), AgentFactory(section=section_a)
    at = datetime(2026, 2, 1, tzinfo=UTC)
    return {
        "base": incident_of(rule_a, created_at=at),
        "acknowledged": incident_of(rule_a, created_at=at + timedelta(minutes=1), status="acknowledged"),
        "resolved": incident_of(rule_a, created_at=at + timedelta(minutes=2), status="resolved"),
        "critical": incident_of(rule_a, created_at=at + timedelta(minutes=3), severity="critical"),
        "agent_offline": incident_of(rule_a, created_at=at + timedelta(minutes=4), kind="agent_offline", agent=agent),
        "other_rule": incident_of(other_rule, created_at=at + timedelta(minutes=5)),
        "endpoint": incident_of(rule_a, created_at=at + timedelta(minutes=6), endpoint=endpoint),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "acknowledged"}, ["acknowledged"]),
        ({"status": "resolved"}, ["resolved"]),
        ({"status": "open"}, ["endpoint", "other_rule", "agent_offline", "critical", "acknowledged", "base"]),
        ({"severity": "critical"}, ["critical"]),
        ({"kind": "agent_offline"}, ["agent_offline"]),
        ({"rule_id": "OTHER_RULE"}, ["other_rule"]),
        ({"endpoint_id": "ENDPOINT"}, ["endpoint"]),
        ({"agent_id": "AGENT"}, ["agent_offline"]),
        ({"status": "active", "kind": "endpoint", "severity": "warning", "rule_id": "RULE"}, ["endpoint", "base"]),
        ({"rule_id": "00000000-0000-0000-0000-000000000000"}, []),
    ],
    ids=["acknowledged", "resolved", "open", "severity", "kind", "rule", "endpoint", "agent", "together", "none"],
)
def test_it_filters_incidents(client_for, vera, many, rule_a, query, expected):
    ids = {
        "OTHER_RULE": many["other_rule"].rule_id,
        "RULE": rule_a.pk,
        "ENDPOINT": many["endpoint"].endpoint_id,
        "AGENT": many["agent_offline"].agent_id,
    }
    query = {name: str(ids.get(value, value)) for name, value in query.items()}
    response = client_for(vera).get(URL, query)
    assert response.status_code == 200, response.content
    assert [item["id"] for item in response.json()["alerts"]] == [str(many[name].pk) for name in expected]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"status": ""}, "status"),
        ({"status": "Active"}, "status"),
        ({"severity": "fatal"}, "severity"),
        ({"kind": "network"}, "kind"),
        ({"rule_id": "nope"}, "rule_id"),
        ({"endpoint_id": "123"}, "endpoint_id"),
        ({"agent_id": ""}, "agent_id"),
    ],
    ids=["status", "empty-status", "status-case", "severity", "kind", "rule-id", "endpoint-id", "empty-agent-id"],
)
def test_it_rejects_bad_filters(client_for, vera, incident_a, assert_error, query, field):
    assert_error(client_for(vera).get(URL, query), 400, "validation_error", field=field)


def test_another_tenants_ids_filter_to_nothing(client_for, bob, incident_a):
    response = client_for(bob).get(URL, {"rule_id": str(incident_a.rule_id)})
    assert (response.status_code, response.json()["alerts"]) == (200, [])


# ---------------------------------------------------------------------------------------------
# POST /alerts


def test_post_alerts_creates_a_rule_like_post_alert_rules(client_for, oscar, tenant_a, channels_a):
    body = {
        "tenant_id": str(tenant_a.pk),
        "name": "Loss",
        "severity": "critical",
        "condition": {"metric": "packet_loss_percent", "operator": "greater_than", "threshold": 20},
        "quorum": {"min_agents": 2},
        "notifications": [str(channels_a[1].pk)],
    }
    client = client_for(oscar)
    upstream = client.post(URL, body, format="json")
    ours = client.post("/api/v1/alert-rules", body, format="json")
    assert (upstream.status_code, ours.status_code) == (201, 201)
    volatile = ("id", "created_at", "updated_at")
    assert {k: v for k, v in upstream.json().items() if k not in volatile} == {
        k: v for k, v in ours.json().items() if k not in volatile
    }
    rule = AlertRule.objects.get(pk=upstream.json()["id"])
    assert (rule.metric, rule.threshold, rule.quorum_min_agents, list(rule.channels.all())) == (
        "packet_loss_percent",
        20,
        2,
        [channels_a[1]],
    )
    assert AuditEvent.objects.filter(action="alert_rule.create", object_id=str(rule.pk)).exists()


# ---------------------------------------------------------------------------------------------
# Acknowledgement


def test_an_operator_acknowledges_an_active_incident(client_for, oscar, incident_a, channels_a):
    with time_machine.travel(NOW, tick=False):
        response = client_for(oscar).post(f"{URL}/{incident_a.pk}/acknowledge", {"note": "on it"}, format="json")
    assert response.status_code == 200, response.content
    incident_a.refresh_from_db()
    assert (incident_a.status, incident_a.acknowledged_at, incident_a.acknowledged_by) == ("acknowledged", NOW, oscar)
    body = response.json()
    assert (body["status"], body["acknowledged_by"], body["acknowledged_at"]) == (
        "acknowledged",
        "oscar",
        "2026-03-01T09:30:00Z",
    )
    assert [(event["kind"], event["actor"], event["note"]) for event in body["history"]] == [
        ("acknowledged", "oscar", "on it"),
        ("notified", None, ""),
    ]
    # One outbox row per enabled channel of the rule, due now, carrying the acknowledged document.
    rows = Notification.objects.filter(incident=incident_a).order_by("channel__name")
    assert [(row.channel, row.event, row.status, row.next_attempt_at) for row in rows] == [
        (channels_a[0], "alert.acknowledged", "pending", NOW),
        (channels_a[1], "alert.acknowledged", "pending", NOW),
    ]
    assert {row.payload["alert"]["status"] for row in rows} == {"acknowledged"}
    assert sorted(item["channel_id"] for item in body["notifications"]) == sorted(str(c.pk) for c in channels_a[:2])
    assert AuditEvent.objects.filter(action="incident.acknowledge", actor=oscar, object_id=str(incident_a.pk)).exists()


def test_acknowledging_needs_no_body(client_for, oscar, incident_a):
    response = client_for(oscar).post(f"{URL}/{incident_a.pk}/acknowledge")
    assert response.status_code == 200, response.content
    assert IncidentEvent.objects.get(incident=incident_a, kind="acknowledged").note == ""


def test_acknowledging_twice_is_a_conflict(client_for, oscar, alice, incident_a, db_state, assert_error):
    assert client_for(oscar).post(f"{URL}/{incident_a.pk}/acknowledge").status_code == 200
    before = db_state()
    body = assert_error(
        client_for(alice).post(f"{URL}/{incident_a.pk}/acknowledge"), 409, "incident_already_acknowledged"
    )
    assert "already acknowledged" in body["message"]
    assert db_state() == before


def test_a_resolved_incident_cannot_be_acknowledged(client_for, oscar, incident_a, db_state, assert_error):
    Incident.objects.filter(pk=incident_a.pk).update(status="resolved", resolved_at=NOW)
    before = db_state()
    assert_error(client_for(oscar).post(f"{URL}/{incident_a.pk}/acknowledge"), 409, "incident_resolved")
    assert db_state() == before


def test_a_viewer_cannot_acknowledge(client_for, vera, incident_a, db_state, assert_error):
    before = db_state()
    assert_error(client_for(vera).post(f"{URL}/{incident_a.pk}/acknowledge"), 403, "forbidden")
    assert db_state() == before
    assert Incident.objects.get(pk=incident_a.pk).status == "active"


def test_another_tenant_cannot_acknowledge(client_for, bob, incident_a, db_state, assert_error):
    before = db_state()
    assert_error(
        client_for(bob).post(f"{URL}/{incident_a.pk}/acknowledge", {"note": "x"}, format="json"), 404, "not_found"
    )
    assert db_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"note": "x" * 2001}, "note"),
        ({"note": 5}, "note"),
        ({"note": None}, "note"),
        ({"note": "a\x00b"}, "note"),
        ({"comment": "hi"}, "comment"),
        (["on it"], "body"),
    ],
    ids=["long-note", "note-a-number", "null-note", "note-with-a-nul", "unknown-key", "not-an-object"],
)
def test_it_rejects_bad_acknowledgements(client_for, oscar, incident_a, db_state, assert_error, body, field):
    before = db_state()
    response = client_for(oscar).post(f"{URL}/{incident_a.pk}/acknowledge", body, format="json")
    assert_error(response, 400, "validation_error", field=field)
    assert db_state() == before


@pytest.mark.parametrize("covered_by", ["incident-flag", "window-of-the-section", "window-of-the-endpoint"])
def test_an_acknowledgement_in_maintenance_notifies_nobody(client_for, oscar, incident_a, section_a, covered_by):
    if covered_by == "incident-flag":
        Incident.objects.filter(pk=incident_a.pk).update(in_maintenance=True)
    else:
        lists = (
            {"section_ids": [str(section_a.pk)]}
            if covered_by == "window-of-the-section"
            else {"endpoint_ids": [str(incident_a.endpoint_id)]}
        )
        MaintenanceWindow.objects.create(
            tenant=section_a.tenant,
            name="upgrade",
            starts_at=NOW - timedelta(hours=1),
            ends_at=NOW + timedelta(hours=1),
            **lists,
        )
    with time_machine.travel(NOW, tick=False):
        response = client_for(oscar).post(f"{URL}/{incident_a.pk}/acknowledge")
    assert response.status_code == 200, response.content
    assert set(Notification.objects.filter(incident=incident_a).values_list("status", flat=True)) == {"suppressed"}
    assert [event["kind"] for event in response.json()["history"]] == ["acknowledged", "suppressed"]


def test_a_window_elsewhere_does_not_suppress(client_for, oscar, incident_a, section_a):
    elsewhere = EndpointFactory(section=section_a)
    MaintenanceWindow.objects.create(
        tenant=section_a.tenant,
        name="other host",
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW + timedelta(hours=1),
        endpoint_ids=[str(elsewhere.pk)],
    )
    with time_machine.travel(NOW, tick=False):
        assert client_for(oscar).post(f"{URL}/{incident_a.pk}/acknowledge").status_code == 200
    assert set(Notification.objects.filter(incident=incident_a).values_list("status", flat=True)) == {"pending"}


@pytest.fixture
def on_postgres(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has a single writer: concurrent acknowledgements need PostgreSQL")


def test_two_people_acknowledging_at_once_make_one_acknowledgement(on_postgres):
    tenant = TenantFactory(name="Race")
    people = [UserFactory(username=f"op{n}") for n in range(2)]
    for person in people:
        MembershipFactory(user=person, tenant=tenant, role="operator")
    rule = rule_of(tenant, channels=[channel_of(tenant)])
    incident = incident_of(rule)
    start = threading.Barrier(len(people))

    def acknowledge(person) -> str:
        try:
            start.wait()
            actor = Actor(user=person, label=f"user:{person.username}")
            incident_acknowledge(actor=actor, incident=Incident.objects.get(pk=incident.pk), note=person.username)
            return "acknowledged"
        except Conflict as refusal:
            return refusal.code
        finally:
            connections.close_all()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=len(people)) as pool:
        outcomes = sorted(pool.map(acknowledge, people))

    assert outcomes == ["acknowledged", "incident_already_acknowledged"]
    assert IncidentEvent.objects.filter(incident=incident, kind="acknowledged").count() == 1
    assert Notification.objects.filter(incident=incident, event="alert.acknowledged").count() == 1
    winner = IncidentEvent.objects.get(incident=incident, kind="acknowledged")
    assert Incident.objects.get(pk=incident.pk).acknowledged_by == winner.actor
