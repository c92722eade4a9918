"""The alerting admin through the test client, as members of tenant A with each role and of tenant B:
incidents (read, acknowledge), rules (form, built-in rule, "would match now"), channels (secrets
write-only, send test), maintenance windows, and the open incidents first on the overview.

Everything of tenant B carries "bravo" in its name (tests/admin), so a page that leaks B shows it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.html import strip_tags

from agents.models import Agent
from alerting.models import (
    AlertRule,
    Channel,
    DeliveryAttempt,
    Incident,
    IncidentEvent,
    MaintenanceWindow,
    Notification,
)
from endpoints.models import Endpoint
from results.models import CheckResult
from results.rollups import rollups_add
from tenants.models import AuditEvent, Role
from tests.admin import LEAK_MARKER, admin_url, build_world, form_errors, html, staff_user
from tests.alerting.receiver import Receiver

pytestmark = pytest.mark.django_db

OVERVIEW = "/admin/results/checkresult/overview/"
# Secrets of each tenant's channels: none may appear on any page.
SECRETS = {
    "acme": ["acme-signing-secret-0042", "T0KEN-acme-webhook-path", "ACME-routing-key-31337", "SLACKTOKEN-acme"],
    LEAK_MARKER: ["bravo-signing-secret-0042", "T0KEN-bravo-webhook-path", "BRAVO-routing-key-31337"],
}
PUBLIC_URL = "https://93.184.216.34/hooks/new-T0KEN"  # a public address literal: checked without DNS


@dataclass
class Alerting:
    """One tenant's alerting objects: a rule with a webhook channel, a PagerDuty and a Slack channel,
    a maintenance window, an active and a resolved incident (history, notifications, attempts)."""

    rule: AlertRule
    webhook: Channel
    pagerduty: Channel
    slack: Channel
    window: MaintenanceWindow
    incident: Incident
    resolved: Incident


def alerting_of(side, prefix: str) -> Alerting:
    tenant, now = side.tenant, timezone.now()
    secrets = SECRETS[prefix]
    webhook = Channel.objects.create(
        tenant=tenant,
        name=f"{prefix}-hook",
        type="webhook",
        configuration={"url": f"https://hooks.{prefix}.example.com/{secrets[1]}", "secret": secrets[0]},
    )
    pagerduty = Channel.objects.create(
        tenant=tenant, name=f"{prefix}-pager", type="pagerduty", configuration={"routing_key": secrets[2]}
    )
    slack = Channel.objects.create(
        tenant=tenant,
        name=f"{prefix}-chat",
        type="slack",
        configuration={"webhook_url": f"https://hooks.slack.com/services/{secrets[-1]}"},
    )
    rule = AlertRule.objects.create(tenant=tenant, name=f"{prefix}-down", metric="status", severity="critical")
    rule.channels.set([webhook, pagerduty])
    window = MaintenanceWindow.objects.create(
        tenant=tenant,
        name=f"{prefix}-upgrade",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
        endpoint_ids=[str(side.endpoint.pk)],
    )
    incident = incident_of(side, rule, f"{prefix}.example.net:443 is unreachable", now - timedelta(minutes=12))
    resolved = incident_of(side, rule, f"{prefix}-old is unreachable", now - timedelta(days=1), status="resolved")
    return Alerting(rule, webhook, pagerduty, slack, window, incident, resolved)


def incident_of(side, rule, title: str, at, status: str = "active") -> Incident:
    incident = Incident.objects.create(
        tenant=side.tenant,
        rule=rule,
        kind="endpoint",
        severity=rule.severity,
        status=status,
        title=title,
        endpoint=side.endpoint if status == "active" else None,
        target=str(side.endpoint),
        failing_agents=[str(side.agent.pk)],
        metric_type="status",
        current_value=0,
        created_at=at,
    )
    channels = [str(channel.pk) for channel in rule.channels.all()]
    IncidentEvent.objects.create(
        incident=incident, at=at, kind="opened", data={"failing_agents": [str(side.agent.pk)], "ok_agents": []}
    )
    IncidentEvent.objects.create(
        incident=incident, at=at, kind="notified", data={"event": "alert.opened", "channels": channels}
    )
    for channel in rule.channels.all():
        notification = Notification.objects.create(
            tenant=side.tenant,
            incident=incident,
            channel=channel,
            event="alert.opened",
            payload={},
            status="pending",
            attempts=1,
            next_attempt_at=at,
            created_at=at,
        )
        DeliveryAttempt.objects.create(
            notification=notification, at=at, duration_ms=31.4, status_code=500, outcome="failed", error="HTTP 500."
        )
    return incident


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def acme(world):
    return alerting_of(world.a, "acme")


@pytest.fixture
def bravo(world):
    return alerting_of(world.b, LEAK_MARKER)


@pytest.fixture
def vera(world):
    return staff_user("vera", world.a.tenant, Role.VIEWER)


@pytest.fixture
def oscar(world):
    return staff_user("oscar", world.a.tenant, Role.OPERATOR)


@pytest.fixture
def alice(world):
    return staff_user("alice", world.a.tenant, Role.ADMIN)


@pytest.fixture
def login(client):
    def as_user(user):
        client.force_login(user)
        return client

    return as_user


@pytest.fixture
def private_targets(settings):
    """The local receiver is on 127.0.0.1: allow private targets, as tests/alerting/test_delivery.py does."""
    settings.SMOTRA = replace(settings.SMOTRA, alerts=replace(settings.SMOTRA.alerts, allow_private_targets=True))


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


def assert_no_leak(response) -> None:
    assert LEAK_MARKER not in html(response).lower()


def assert_no_secret(response) -> None:
    page = html(response)
    for secret in (*SECRETS["acme"], *SECRETS[LEAK_MARKER]):
        assert secret not in page


# ---------------------------------------------------------------------------------------------
# Tenant scoping


OBJECTS = {  # model: (attribute of Alerting, what of tenant A the changelist shows)
    Incident: ("incident", "acme.example.net:443 is unreachable"),
    AlertRule: ("rule", "acme-down"),
    Channel: ("webhook", "acme-hook"),
    MaintenanceWindow: ("window", "acme-upgrade"),
}


@pytest.mark.parametrize("model", list(OBJECTS), ids=[model.__name__ for model in OBJECTS])
def test_a_member_sees_only_their_tenants_objects(login, acme, bravo, vera, model):
    response = login(vera).get(admin_url(model))

    assert response.status_code == 200
    assert OBJECTS[model][1] in html(response)
    assert_no_leak(response)  # neither in the rows nor in the sidebar filters


@pytest.mark.parametrize("view", ["change", "delete", "history"])
def test_another_tenants_objects_are_not_found_by_id(login, acme, bravo, alice, view):
    client = login(alice)

    for model, (attribute, _shown) in OBJECTS.items():
        response = client.get(admin_url(model, view, getattr(bravo, attribute).pk))
        assert response.status_code in (302, 403, 404), (model.__name__, response.status_code)
        assert_no_leak(response)
        if response.status_code == 302:
            assert_no_leak(client.get(response.url))


def test_another_tenants_incident_and_channel_take_no_button_presses(login, acme, bravo, alice):
    client = login(alice)

    acknowledge = client.post(admin_url(Incident, "acknowledge", bravo.incident.pk), {"note": "mine now"})
    send_test = client.post(admin_url(Channel, "send_test", bravo.webhook.pk))
    action = client.post(
        admin_url(Incident), {"action": "acknowledge_selected", "_selected_action": [str(bravo.incident.pk)]}
    )

    assert (acknowledge.status_code, send_test.status_code) == (404, 404)
    assert action.status_code in (200, 302)
    bravo.incident.refresh_from_db()
    assert bravo.incident.status == "active"
    assert not Notification.objects.filter(event="test").exists()


def test_the_rule_form_offers_only_the_tenants_channels_and_objects(login, world, acme, bravo, oscar):
    response = login(oscar).get(admin_url(AlertRule, "change", acme.rule.pk))

    form = response.context["adminform"].form
    assert set(form.fields["channels"].queryset) == {acme.webhook, acme.pagerduty, acme.slack}
    assert list(form.fields["endpoint_ids"].queryset) == [world.a.endpoint]
    assert list(form.fields["agent_ids"].queryset) == [world.a.agent]
    assert_no_leak(response)


# ---------------------------------------------------------------------------------------------
# Incidents: viewers read, operators acknowledge


def test_a_viewer_reads_an_incident_but_cannot_acknowledge_it(login, world, acme, vera):
    client = login(vera)

    page = client.get(admin_url(Incident, "change", acme.incident.pk))
    listing = client.get(admin_url(Incident))
    button = client.post(admin_url(Incident, "acknowledge", acme.incident.pk), {"note": "on it"})
    action = client.post(
        admin_url(Incident), {"action": "acknowledge_selected", "_selected_action": [str(acme.incident.pk)]}
    )

    assert page.status_code == 200 and 'name="note"' not in html(page)
    assert "acknowledge_selected" not in html(listing)
    assert button.status_code == 403
    assert action.status_code in (200, 302)
    acme.incident.refresh_from_db()
    assert acme.incident.status == "active"
    assert list(acme.incident.events.values_list("kind", flat=True)) == ["opened", "notified"]


def test_incidents_cannot_be_added_changed_or_deleted_by_members(login, acme, alice):
    client = login(alice)

    assert client.get(admin_url(Incident, "add")).status_code == 403
    assert client.post(admin_url(Incident, "change", acme.incident.pk), {"title": "renamed"}).status_code == 403
    assert client.post(admin_url(Incident, "delete", acme.incident.pk), {"post": "yes"}).status_code == 403
    listing = client.get(admin_url(Incident))
    assert "delete_selected" not in html(listing)
    assert Incident.objects.filter(pk=acme.incident.pk, title=acme.incident.title).exists()


def test_an_operator_acknowledges_from_the_change_page(login, acme, oscar):
    client = login(oscar)
    page = client.get(admin_url(Incident, "change", acme.incident.pk))
    assert 'name="note"' in html(page) and "csrfmiddlewaretoken" in html(page)

    response = client.post(
        admin_url(Incident, "acknowledge", acme.incident.pk), {"note": "Oscar is on it"}, follow=True
    )

    acme.incident.refresh_from_db()
    assert (acme.incident.status, acme.incident.acknowledged_by) == ("acknowledged", oscar)
    event = acme.incident.events.get(kind="acknowledged")
    assert (event.actor, event.note) == (oscar, "Oscar is on it")
    assert "Incident acknowledged." in messages_of(response)
    assert "Oscar is on it" in html(response) and 'class="event-acknowledged"' in html(response)
    assert AuditEvent.objects.filter(action="incident.acknowledge", object_id=str(acme.incident.pk)).exists()
    # An acknowledgement notifies the rule's channels too (through the service's outbox).
    assert Notification.objects.filter(incident=acme.incident, event="alert.acknowledged").count() == 2


@pytest.mark.parametrize(
    ("status", "message"),
    [("acknowledged", "already acknowledged"), ("resolved", "resolved; only an active one can be acknowledged")],
)
def test_acknowledging_an_incident_that_is_not_active_says_why(login, acme, oscar, status, message):
    Incident.objects.filter(pk=acme.incident.pk).update(status=status)

    response = login(oscar).post(admin_url(Incident, "acknowledge", acme.incident.pk), {"note": ""}, follow=True)

    assert response.status_code == 200
    assert any(message in text for text in messages_of(response)), messages_of(response)
    assert not acme.incident.events.filter(kind="acknowledged").exists()


def test_the_acknowledge_action_acknowledges_the_active_ones_and_counts_the_rest(login, acme, oscar):
    selected = [str(acme.incident.pk), str(acme.resolved.pk)]

    response = login(oscar).post(
        admin_url(Incident), {"action": "acknowledge_selected", "_selected_action": selected}, follow=True
    )

    acme.incident.refresh_from_db()
    assert acme.incident.status == "acknowledged"
    assert "1 incident acknowledged." in messages_of(response)
    assert any(
        text.startswith("1 incident not acknowledged: This incident is resolved") for text in messages_of(response)
    )


def test_the_incident_page_shows_its_history_and_deliveries_readably(login, world, acme, vera):
    response = login(vera).get(admin_url(Incident, "change", acme.incident.pk))

    page = html(response)
    history = page[page.index('id="incident-history"') :]
    assert "failing: acme-agent; ok: none" in history  # agents by name, not by id
    assert "alert.opened to acme-hook, acme-pager" in history or "alert.opened to acme-pager, acme-hook" in history
    notifications = page[page.index('id="incident-notifications"') :]
    assert notifications.count("HTTP 500") == 2 and "31 ms" in notifications
    assert "Failing agents" in page and "acme-agent" in page
    assert_no_secret(response)
    assert_no_leak(response)


def test_deleting_an_endpoint_with_incidents_stays_an_operators_right(login, world, acme, oscar):
    """Incidents go with their endpoint: that members may not delete incidents alone must not block it."""
    client = login(oscar)

    page = client.get(admin_url(Endpoint, "delete", world.a.endpoint.pk))
    response = client.post(admin_url(Endpoint, "delete", world.a.endpoint.pk), {"post": "yes"})

    assert page.status_code == 200 and "permission" not in html(page).lower()
    assert response.status_code == 302
    assert not Endpoint.objects.filter(pk=world.a.endpoint.pk).exists()
    assert not Incident.objects.filter(pk=acme.incident.pk).exists()


# ---------------------------------------------------------------------------------------------
# Rules


def rule_form(**changes) -> dict:
    data = {
        "name": "api slow",
        "description": "",
        "enabled": "on",
        "severity": "warning",
        "metric": "response_time_ms",
        "operator": "greater_than",
        "threshold": "250",
        "aggregation": "p95",
        "window_seconds": "300",
        "duration_seconds": "60",
        "quorum_min_agents": "1",
        "quorum_min_percent": "50",
        "cooldown_seconds": "300",
        "notify_on_resolve": "on",
    }
    return {key: value for key, value in {**data, **changes}.items() if value is not None}


def test_an_operator_adds_a_rule_with_filters_and_channels(login, world, acme, oscar):
    data = rule_form(
        tenant=str(world.a.tenant.pk),
        channels=[str(acme.webhook.pk)],
        endpoint_ids=[str(world.a.endpoint.pk)],
        agent_ids=[str(world.a.agent.pk)],
        metric_types=["ping", "httpget"],
    )

    response = login(oscar).post(admin_url(AlertRule, "add"), data)

    assert response.status_code == 302, form_errors(response)
    rule = AlertRule.objects.get(name="api slow")
    assert (rule.tenant, rule.metric, rule.aggregation, rule.threshold) == (
        world.a.tenant,
        "response_time_ms",
        "p95",
        250,
    )
    assert rule.filters["endpoint_ids"] == [str(world.a.endpoint.pk)]
    assert rule.filters["agent_ids"] == [str(world.a.agent.pk)]
    assert rule.filters["metric_types"] == ["httpget", "ping"]
    assert list(rule.channels.all()) == [acme.webhook]
    assert AuditEvent.objects.filter(action="alert_rule.create", object_id=str(rule.pk)).count() == 1  # no dry run left


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"metric": "uptime_percent", "threshold": "150"}, "threshold"),
        ({"window_seconds": "30"}, None),  # the model's constraint
        ({"name": ""}, "name"),
    ],
)
def test_it_refuses_a_bad_rule_on_the_form(login, world, oscar, changes, field):
    before = AlertRule.objects.count()

    response = login(oscar).post(admin_url(AlertRule, "add"), rule_form(tenant=str(world.a.tenant.pk), **changes))

    assert response.status_code == 200
    errors = form_errors(response)
    assert (field or "__all__") in errors, errors
    assert AlertRule.objects.count() == before
    assert not AuditEvent.objects.filter(action="alert_rule.create").exists()


def test_it_refuses_another_tenants_channel_or_endpoint_on_a_rule(login, world, acme, bravo, oscar):
    client = login(oscar)
    url = admin_url(AlertRule, "change", acme.rule.pk)

    channel = client.post(url, rule_form(name="acme-down", channels=[str(bravo.webhook.pk)]))
    endpoint = client.post(url, rule_form(name="acme-down", endpoint_ids=[str(world.b.endpoint.pk)]))

    assert "channels" in form_errors(channel) and "endpoint_ids" in form_errors(endpoint)
    acme.rule.refresh_from_db()
    assert (acme.rule.metric, acme.rule.filters) == ("status", {})
    assert set(acme.rule.channels.all()) == {acme.webhook, acme.pagerduty}


def test_a_viewer_cannot_change_a_rule_and_reads_its_scope_by_name(login, world, acme, vera):
    AlertRule.objects.filter(pk=acme.rule.pk).update(filters={"agent_ids": [str(world.a.agent.pk)]})
    client = login(vera)

    page = client.get(admin_url(AlertRule, "change", acme.rule.pk))
    response = client.post(admin_url(AlertRule, "change", acme.rule.pk), rule_form(name="renamed"))

    assert "Agents: acme-agent" in html(page)
    assert response.status_code == 403
    assert client.get(admin_url(AlertRule, "add")).status_code == 403
    assert AlertRule.objects.get(pk=acme.rule.pk).name == "acme-down"


def test_the_builtin_rule_is_editable_but_not_deletable(login, world, oscar):
    builtin = AlertRule.objects.get(tenant=world.a.tenant, builtin="agent_offline")
    client = login(oscar)

    page = client.get(admin_url(AlertRule, "change", builtin.pk))
    changed = client.post(
        admin_url(AlertRule, "change", builtin.pk),
        {"name": "Agent offline", "description": "", "enabled": "on", "severity": "critical"}
        | {"duration_seconds": "120", "cooldown_seconds": "600", "notify_on_resolve": "on"},
    )
    deleted = client.post(admin_url(AlertRule, "delete", builtin.pk), {"post": "yes"}, follow=True)

    assert page.status_code == 200
    assert "deletelink" not in html(page)
    assert "id_endpoint_ids" not in html(page) and "id_operator" not in html(page)  # it watches agents
    assert changed.status_code == 302, form_errors(changed)
    builtin.refresh_from_db()
    assert (builtin.severity, builtin.duration_seconds, builtin.metric) == ("critical", 120, "agent_offline")
    assert any("cannot be deleted" in text for text in messages_of(deleted)), messages_of(deleted)
    assert AlertRule.objects.filter(pk=builtin.pk).exists()


def test_an_operator_deletes_a_rule_with_its_incidents(login, acme, oscar):
    client = login(oscar)

    page = client.get(admin_url(AlertRule, "delete", acme.rule.pk))
    response = client.post(admin_url(AlertRule, "delete", acme.rule.pk), {"post": "yes"})

    assert page.status_code == 200 and "permission" not in html(page).lower()
    assert response.status_code == 302
    assert not AlertRule.objects.filter(pk=acme.rule.pk).exists()
    assert not Incident.objects.filter(rule_id=acme.rule.pk).exists()


def failing_pings(agent, endpoint, now, minutes: int = 3) -> list[CheckResult]:
    return [
        CheckResult(
            id=uuid.uuid4(),
            agent=agent,
            endpoint_id=endpoint.pk,
            check_type="ping",
            success=False,
            checked_at=now - timedelta(minutes=minute),
            received_at=now,
            packets_sent=3,
            packets_received=0,
            details={"success_latencies": [], "successes": 0, "failures": 3},
        )
        for minute in range(minutes)
    ]


def test_the_rule_page_previews_what_it_would_open_now(login, world, acme, vera):
    now = timezone.now()
    Agent.objects.filter(pk=world.a.agent.pk).update(last_seen_at=now)
    fine = Agent.objects.create(id=uuid.uuid4(), section=world.a.section, name="acme-second-probe", last_seen_at=now)
    other = Endpoint.objects.create(section=world.a.section, address="acme-other.example.net")
    rollups_add(failing_pings(world.a.agent, other, now))
    rollups_add(failing_pings(fine, other, now))
    rule = AlertRule.objects.create(
        tenant=world.a.tenant, name="acme-unreachable", metric="status", quorum_min_agents=1, quorum_min_percent=50
    )
    incidents = Incident.objects.count()

    response = login(vera).get(admin_url(AlertRule, "change", rule.pk))

    rows = response.context["preview"]["rows"]
    assert [(row["kind"], strip_tags(row["endpoint"])) for row in rows] == [("Endpoint", "acme-other.example.net")]
    assert rows[0]["failing"] in ("acme-agent, acme-second-probe", "acme-second-probe, acme-agent")
    assert rows[0]["ok"] == "" and rows[0]["value"] == "0 checks passed" and not rows[0]["open"]
    preview = html(response)[html(response).index('id="rule-preview"') :]
    assert "acme-other.<wbr>example.<wbr>net" in preview and "acme-second-probe" in preview
    assert Incident.objects.count() == incidents  # a preview opens nothing


def test_the_rule_preview_says_when_nothing_matches(login, acme, vera):
    response = login(vera).get(admin_url(AlertRule, "change", acme.rule.pk))

    assert response.context["preview"]["rows"] == []
    assert "Nothing: the condition holds for nothing it watches." in html(response)


# ---------------------------------------------------------------------------------------------
# Channels: secrets write-only, send test


def test_channel_secrets_never_appear_on_a_page(login, acme, bravo, alice, vera):
    for user in (alice, vera):
        client = login(user)
        for url in (
            admin_url(Channel),
            *(admin_url(Channel, "change", c.pk) for c in (acme.webhook, acme.pagerduty, acme.slack)),
        ):
            response = client.get(url)
            assert response.status_code == 200, url
            assert_no_secret(response)
    page = html(login(alice).get(admin_url(Channel, "change", acme.webhook.pk)))
    assert "Stored: set (https://hooks.acme.example.com/…)" in page and "Stored: set." in page


def test_an_admin_saves_a_channel_and_empty_secrets_keep_the_stored_ones(login, acme, alice):
    stored = dict(acme.webhook.configuration)

    response = login(alice).post(
        admin_url(Channel, "change", acme.webhook.pk),
        {"name": "acme-hook-renamed", "enabled": "on", "url": "", "secret": ""},
    )

    assert response.status_code == 302, form_errors(response)
    acme.webhook.refresh_from_db()
    assert (acme.webhook.name, acme.webhook.configuration) == ("acme-hook-renamed", stored)


def test_an_admin_replaces_a_url_and_removes_the_signing_secret(login, acme, alice):
    response = login(alice).post(
        admin_url(Channel, "change", acme.webhook.pk),
        {"name": "acme-hook", "enabled": "on", "url": PUBLIC_URL, "remove_secret": "on"},
    )

    assert response.status_code == 302, form_errors(response)
    acme.webhook.refresh_from_db()
    assert acme.webhook.configuration == {"url": PUBLIC_URL}


def test_an_admin_adds_a_channel_of_each_type(login, world, alice):
    client = login(alice)
    base = {"tenant": str(world.a.tenant.pk), "enabled": "on"}
    posts = [
        {"name": "hook", "type": "webhook", "url": PUBLIC_URL, "secret": "s3cret-value"},
        {"name": "mail", "type": "email", "recipients": "ops@acme.example.com,\r\noncall@acme.example.com"},
        {"name": "pager", "type": "pagerduty", "routing_key": "R0UTINGKEY0123"},
    ]

    for data in posts:
        response = client.post(admin_url(Channel, "add"), base | data)
        assert response.status_code == 302, form_errors(response)

    stored = {
        channel.name: channel.configuration for channel in Channel.objects.filter(name__in=["hook", "mail", "pager"])
    }
    assert stored == {
        "hook": {"url": PUBLIC_URL, "secret": "s3cret-value"},
        "mail": {"recipients": ["ops@acme.example.com", "oncall@acme.example.com"]},
        "pager": {"routing_key": "R0UTINGKEY0123"},
    }


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": "webhook", "url": "http://127.0.0.1:8080/hook"}, "url"),  # inside the network (SSRF)
        ({"type": "webhook", "url": "ftp://93.184.216.34/hook"}, "url"),
        ({"type": "slack"}, "webhook_url"),
        ({"type": "email", "recipients": "not-an-address"}, "recipients"),
        ({"type": "pagerduty", "routing_key": "has spaces in it"}, "routing_key"),
    ],
)
def test_it_refuses_a_bad_channel_configuration_on_its_field(login, world, alice, data, field):
    before = Channel.objects.count()

    response = login(alice).post(admin_url(Channel, "add"), {"tenant": str(world.a.tenant.pk), "name": "bad"} | data)

    assert response.status_code == 200
    assert field in form_errors(response), form_errors(response)
    assert Channel.objects.count() == before
    assert 'value="http://127.0.0.1' not in html(response)  # what was typed is not shown back either


def test_operators_and_viewers_cannot_write_channels(login, acme, oscar, vera):
    for user in (oscar, vera):
        client = login(user)
        assert client.get(admin_url(Channel, "add")).status_code == 403
        change = client.post(admin_url(Channel, "change", acme.webhook.pk), {"name": "taken", "enabled": "on"})
        assert change.status_code == 403
        assert client.post(admin_url(Channel, "send_test", acme.webhook.pk)).status_code == 403
        assert 'id="channel-send-test"' not in html(client.get(admin_url(Channel, "change", acme.webhook.pk)))
    assert Channel.objects.get(pk=acme.webhook.pk).name == "acme-hook"
    assert not Notification.objects.filter(event="test").exists()


def test_send_test_delivers_to_a_local_receiver(login, world, alice, private_targets):
    with Receiver() as receiver:
        channel = Channel.objects.create(
            tenant=world.a.tenant,
            name="local",
            type="webhook",
            configuration={"url": f"{receiver.url}/hook", "secret": "k3y"},
        )
        client = login(alice)
        page = client.get(admin_url(Channel, "change", channel.pk))
        response = client.post(admin_url(Channel, "send_test", channel.pk), follow=True)

    assert 'id="channel-send-test"' in html(page)
    assert [request.json()["event"] for request in receiver.requests] == ["test"]
    assert receiver.requests[0].headers["x-smotra-signature"].startswith("sha256=")
    assert any(text.startswith("Test notification delivered to local (HTTP 200, ") for text in messages_of(response))
    notification = Notification.objects.get(channel=channel, event="test")
    assert (notification.status, notification.delivery_attempts.get().status_code) == ("delivered", 200)
    assert "k3y" not in html(response) and receiver.url not in html(response)


def test_send_test_shows_a_failure(login, world, alice, private_targets):
    with Receiver(default_status=500) as receiver:
        channel = Channel.objects.create(
            tenant=world.a.tenant, name="local", type="webhook", configuration={"url": f"{receiver.url}/hook"}
        )
        response = login(alice).post(admin_url(Channel, "send_test", channel.pk), follow=True)

    assert any(text.startswith("Test notification to local failed: HTTP 500.") for text in messages_of(response))
    assert "HTTP 500" in html(response)[html(response).index('id="channel-notifications"') :]
    assert Notification.objects.get(channel=channel, event="test").status == "failed"


def test_send_test_is_a_post(login, acme, alice):
    assert login(alice).get(admin_url(Channel, "send_test", acme.webhook.pk)).status_code == 405


# ---------------------------------------------------------------------------------------------
# Maintenance windows


def test_an_operator_adds_a_window_for_an_endpoint(login, world, oscar):
    start = timezone.now() - timedelta(minutes=5)
    end = start + timedelta(hours=2)
    data = {
        "tenant": str(world.a.tenant.pk),
        "name": "acme-db-upgrade",
        "starts_at_0": f"{start:%Y-%m-%d}",
        "starts_at_1": f"{start:%H:%M:%S}",
        "ends_at_0": f"{end:%Y-%m-%d}",
        "ends_at_1": f"{end:%H:%M:%S}",
        "endpoint_ids": [str(world.a.endpoint.pk)],
    }
    client = login(oscar)

    response = client.post(admin_url(MaintenanceWindow, "add"), data)
    listing = client.get(admin_url(MaintenanceWindow), {"when": "now"})

    assert response.status_code == 302, form_errors(response)
    window = MaintenanceWindow.objects.get(name="acme-db-upgrade")
    assert (window.endpoint_ids, window.section_ids, window.agent_ids) == ([str(world.a.endpoint.pk)], [], [])
    assert [w.name for w in listing.context["cl"].result_list] == ["acme-db-upgrade"]
    assert "1 endpoint" in html(listing)


def test_it_refuses_a_window_that_ends_before_it_starts_or_covers_another_tenant(login, world, acme, oscar):
    url = admin_url(MaintenanceWindow, "change", acme.window.pk)
    start = acme.window.starts_at
    times = {"starts_at_0": f"{start:%Y-%m-%d}", "starts_at_1": f"{start:%H:%M:%S}", "ends_at_0": f"{start:%Y-%m-%d}"}
    client = login(oscar)

    backwards = client.post(
        url, {"name": "acme-upgrade", **times, "ends_at_1": f"{start - timedelta(minutes=1):%H:%M:%S}"}
    )
    foreign = client.post(
        url, {"name": "acme-upgrade", **times, "ends_at_1": "23:59:59", "agent_ids": [str(world.b.agent.pk)]}
    )

    assert form_errors(backwards) and "agent_ids" in form_errors(foreign)
    acme.window.refresh_from_db()
    assert acme.window.agent_ids == [] and acme.window.ends_at > acme.window.starts_at


# ---------------------------------------------------------------------------------------------
# Open incidents first on the overview and the index


def test_the_overview_lists_the_open_incidents_first(login, world, acme, bravo, vera):
    critical = acme.incident
    info_rule = AlertRule.objects.create(tenant=world.a.tenant, name="acme-info", metric="status", severity="info")
    info = incident_of(world.a, info_rule, "acme-info is unreachable", timezone.now())
    Incident.objects.filter(pk=info.pk).update(endpoint=None)

    response = login(vera).get(OVERVIEW)

    listed = response.context["open_incidents"]
    assert [incident["title"] for incident in listed] == [critical.title, info.title]  # the resolved one is not open
    page = html(response)
    assert page.index('id="overview-incidents"') < page.index('id="overview-agents"')
    section = page[page.index('id="overview-incidents"') : page.index('id="overview-agents"')]
    assert admin_url(Incident, "change", critical.pk) in section
    assert "12 min ago" in section and "Critical" in section and "Active" in section
    assert_no_leak(response)
    everything_open = login(vera).get(admin_url(Incident), {"status__in": "active,acknowledged"})
    assert {incident.title for incident in everything_open.context["cl"].result_list} == {critical.title, info.title}


def test_the_index_lists_the_open_incidents_under_the_overview_link(login, acme, bravo, vera):
    response = login(vera).get("/admin/")

    page = html(response)
    assert page.index('id="results-overview-link"') < page.index('id="overview-incidents"') < page.index("app-alerting")
    assert acme.incident.title in page
    assert_no_leak(response)


def test_the_overview_says_when_nothing_is_open(login, world, vera):
    page = html(login(vera).get(OVERVIEW))

    assert "No open incidents." in page
