"""{prefix}/alert-rules: operators manage rules, viewers read them, other tenants see nothing; the
built-in agent_offline rule is edited within limits and never deleted.

The database snapshot with every alerting table is tests/alerting/conftest.py's ``db_state``; the
makers of rules, channels and incidents are in tests/alerting/objects.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alerting.builtin import AGENT_OFFLINE
from alerting.models import (
    AlertRule,
    Incident,
)
from tenants.models import AuditEvent
from tests.alerting.objects import builtin_rule, channel_of, incident_of, rule_of
from tests.api_cases import MISSING, ResourceAPICases
from tests.factories import AgentFactory, EndpointFactory, MembershipFactory, TagFactory, TenantFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/alert-rules"
NIL = "00000000-0000-0000-0000-000000000000"


CONDITION = {"metric": "response_time_ms", "operator": "greater_than", "threshold": 500, "aggregation": "p95"}


def condition(**changes) -> dict:
    """CONDITION with ``changes`` (MISSING drops a key)."""
    return {key: value for key, value in {**CONDITION, **changes}.items() if value is not MISSING}


@pytest.fixture
def channel_a(tenant_a):
    return channel_of(tenant_a, name="ops hook")


@pytest.fixture
def rule_a(tenant_a, channel_a):
    return rule_of(tenant_a, channels=[channel_a])


def foreign_placeholders(section_a, section_b, channel_a) -> dict:
    """Bodies naming tenant B's objects (and an unknown channel) for the bad-input tables."""
    foreign = {
        "section": section_b,
        "endpoint": EndpointFactory(section=section_b),
        "tag": TagFactory(section=section_b),
        "agent": AgentFactory(section=section_b),
        "channel": channel_of(section_b.tenant),
    }
    own_endpoint = EndpointFactory(section=section_a)
    return {
        "FOREIGN_SECTION": condition(filters={"section_ids": [str(foreign["section"].pk)]}),
        "FOREIGN_ENDPOINT_SECOND": condition(
            filters={"endpoint_ids": [str(own_endpoint.pk), str(foreign["endpoint"].pk)]}
        ),
        "FOREIGN_TAG": condition(filters={"endpoint_tag_ids": [str(foreign["tag"].pk)]}),
        "FOREIGN_AGENT": condition(filters={"agent_ids": [str(foreign["agent"].pk)]}),
        "FOREIGN_CHANNELS": [str(foreign["channel"].pk)],
        "UNKNOWN_SECOND_CHANNEL": [str(channel_a.pk), NIL],
    }


class TestAlertRulesAPI(ResourceAPICases):
    """401, cross-tenant, viewer, bad-input, pagination and verb cases (tests/api_cases.py)."""

    path = "/alert-rules"
    items_key = "alert_rules"
    model = AlertRule
    write_role = "operator"
    create_in_other_tenant = (400, "validation_error", "tenant_id")
    bad_bodies = [
        ("bad-tenant-id", {"tenant_id": "nope"}, "tenant_id"),
        ("unknown-tenant", {"tenant_id": NIL}, "tenant_id"),
        ("no-name", {"name": MISSING}, "name"),
        ("empty-name", {"name": ""}, "name"),
        ("long-name", {"name": "x" * 201}, "name"),
        ("name-a-number", {"name": 5}, "name"),
        ("name-with-a-nul", {"name": "a\x00b"}, "name"),
        ("long-description", {"description": "x" * 2001}, "description"),
        ("enabled-a-string", {"enabled": "yes"}, "enabled"),
        ("unknown-severity", {"severity": "fatal"}, "severity"),
        ("null-severity", {"severity": None}, "severity"),
        ("no-condition", {"condition": MISSING}, "condition"),
        ("condition-a-string", {"condition": "slow"}, "condition"),
        ("null-condition", {"condition": None}, "condition"),
        ("no-metric", {"condition": condition(metric=MISSING)}, "condition.metric"),
        ("unknown-metric", {"condition": condition(metric="cpu")}, "condition.metric"),
        ("unknown-operator", {"condition": condition(operator="gte")}, "condition.operator"),
        ("no-operator", {"condition": condition(operator=MISSING)}, "condition.operator"),
        ("no-threshold", {"condition": condition(threshold=MISSING)}, "condition.threshold"),
        ("threshold-a-string", {"condition": condition(threshold="500")}, "condition.threshold"),
        ("threshold-a-bool", {"condition": condition(threshold=True)}, "condition.threshold"),
        ("threshold-null", {"condition": condition(threshold=None)}, "condition.threshold"),
        ("threshold-overflows", {"condition": condition(threshold=10**400)}, "condition.threshold"),
        ("negative-response-time", {"condition": condition(threshold=-1)}, "condition.threshold"),
        (
            "percent-over-100",
            {"condition": condition(metric="uptime_percent", threshold=101)},
            "condition.threshold",
        ),
        ("unknown-aggregation", {"condition": condition(aggregation="p90")}, "condition.aggregation"),
        ("window-too-short", {"condition": condition(window_seconds=59)}, "condition.window_seconds"),
        ("window-too-long", {"condition": condition(window_seconds=86401)}, "condition.window_seconds"),
        ("window-a-string", {"condition": condition(window_seconds="300")}, "condition.window_seconds"),
        ("window-a-float", {"condition": condition(window_seconds=300.5)}, "condition.window_seconds"),
        ("negative-duration", {"condition": condition(duration_seconds=-1)}, "condition.duration_seconds"),
        ("duration-too-long", {"condition": condition(duration_seconds=86401)}, "condition.duration_seconds"),
        ("misspelt-condition-key", {"condition": condition(treshold=5)}, "condition.treshold"),
        ("filters-a-list", {"condition": condition(filters=[])}, "condition.filters"),
        ("unknown-filter", {"condition": condition(filters={"colour": ["x"]})}, "condition.filters.colour"),
        (
            "endpoint-ids-a-string",
            {"condition": condition(filters={"endpoint_ids": "all"})},
            "condition.filters.endpoint_ids",
        ),
        (
            "malformed-endpoint-id",
            {"condition": condition(filters={"endpoint_ids": ["nope"]})},
            "condition.filters.endpoint_ids[0]",
        ),
        (
            "unknown-endpoint",
            {"condition": condition(filters={"endpoint_ids": [NIL]})},
            "condition.filters.endpoint_ids[0]",
        ),
        ("endpoint-of-another-tenant", {"condition": "FOREIGN_ENDPOINT_SECOND"}, "condition.filters.endpoint_ids[1]"),
        ("section-of-another-tenant", {"condition": "FOREIGN_SECTION"}, "condition.filters.section_ids[0]"),
        ("tag-of-another-tenant", {"condition": "FOREIGN_TAG"}, "condition.filters.endpoint_tag_ids[0]"),
        ("agent-of-another-tenant", {"condition": "FOREIGN_AGENT"}, "condition.filters.agent_ids[0]"),
        (
            "unknown-check-type",
            {"condition": condition(filters={"metric_types": ["icmp"]})},
            "condition.filters.metric_types[0]",
        ),
        (
            "agent-offline-by-check-type",
            {"condition": {"metric": "agent_offline", "filters": {"metric_types": ["ping"]}}},
            "condition.filters.metric_types",
        ),
        ("quorum-a-number", {"quorum": 2}, "quorum"),
        ("quorum-no-agents", {"quorum": {"min_agents": 0}}, "quorum.min_agents"),
        ("quorum-over-100-percent", {"quorum": {"min_percent": 100.5}}, "quorum.min_percent"),
        ("quorum-percent-a-string", {"quorum": {"min_percent": "50"}}, "quorum.min_percent"),
        ("misspelt-quorum-key", {"quorum": {"min_agent": 2}}, "quorum.min_agent"),
        ("notifications-a-string", {"notifications": "ops"}, "notifications"),
        ("malformed-channel-id", {"notifications": ["nope"]}, "notifications[0]"),
        ("channel-of-another-tenant", {"notifications": "FOREIGN_CHANNELS"}, "notifications[0]"),
        ("unknown-second-channel", {"notifications": "UNKNOWN_SECOND_CHANNEL"}, "notifications[1]"),
        ("negative-cooldown", {"cooldown_seconds": -1}, "cooldown_seconds"),
        ("cooldown-over-a-week", {"cooldown_seconds": 7 * 86400 + 1}, "cooldown_seconds"),
        ("notify-on-resolve-a-number", {"notify_on_resolve": 1}, "notify_on_resolve"),
    ]
    bad_changes = [
        ("empty-name", {"name": ""}, "name"),
        ("unknown-metric", {"condition": {"metric": "cpu"}}, "condition.metric"),
        ("threshold-a-string", {"condition": {"threshold": "1"}}, "condition.threshold"),
        # object_a's threshold (500 ms) is no percentage: the metric cannot change alone.
        ("metric-change-leaves-bad-threshold", {"condition": {"metric": "uptime_percent"}}, "condition.threshold"),
        ("unknown-filter", {"condition": {"filters": {"colour": []}}}, "condition.filters.colour"),
        ("section-of-another-tenant", {"condition": "FOREIGN_SECTION"}, "condition.filters.section_ids[0]"),
        ("quorum-no-agents", {"quorum": {"min_agents": 0}}, "quorum.min_agents"),
        # The rename is valid but must be rolled back with the refused channels.
        ("rename-with-foreign-channels", {"name": "renamed", "notifications": "FOREIGN_CHANNELS"}, "notifications[0]"),
        ("cooldown-a-string", {"cooldown_seconds": "60"}, "cooldown_seconds"),
    ]

    @pytest.fixture
    def object_a(self, rule_a):
        return rule_a

    @pytest.fixture
    def object_b(self, tenant_b):
        return builtin_rule(tenant_b)  # the only rule of tenant B

    @pytest.fixture
    def create_body(self, tenant_a, channel_a):
        return {
            "tenant_id": str(tenant_a.pk),
            "name": "Slow answers",
            "condition": dict(CONDITION),
            "notifications": [str(channel_a.pk)],
        }

    @pytest.fixture
    def update_body(self):
        return {"name": "Slower answers", "condition": {"threshold": 800}}

    @pytest.fixture
    def placeholders(self, section_a, section_b, channel_a):
        return foreign_placeholders(section_a, section_b, channel_a)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_a_viewer_reads_a_rule_in_the_documented_shape(client_for, vera, rule_a, channel_a):
    body = client_for(vera).get(f"{URL}/{rule_a.pk}").json()
    assert body == {
        "id": str(rule_a.pk),
        "tenant_id": str(rule_a.tenant_id),
        "name": "Slow",
        "description": "",
        "enabled": True,
        "severity": "warning",
        "condition": {
            "metric": "response_time_ms",
            "operator": "greater_than",
            "threshold": 500.0,
            "aggregation": "avg",
            "window_seconds": 300,
            "duration_seconds": 0,
            "filters": {
                "section_ids": [],
                "endpoint_ids": [],
                "endpoint_tag_ids": [],
                "agent_ids": [],
                "metric_types": [],
            },
        },
        "quorum": {"min_agents": 1, "min_percent": 50.0},
        "notifications": [str(channel_a.pk)],
        "cooldown_seconds": 300,
        "notify_on_resolve": True,
        "builtin": "",
        "created_at": _iso(rule_a.created_at),
        "updated_at": _iso(rule_a.updated_at),
    }


def test_a_viewer_lists_the_rules_of_the_tenant(client_for, vera, rule_a, tenant_a):
    listed = client_for(vera).get(URL).json()["alert_rules"]
    assert {rule["id"] for rule in listed} == {str(rule_a.pk), str(builtin_rule(tenant_a).pk)}


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_an_operator_creates_a_rule_with_every_part(client_for, oscar, section_a, channel_a, prefix):
    endpoint, tag, agent = (
        EndpointFactory(section=section_a),
        TagFactory(section=section_a),
        AgentFactory(section=section_a),
    )
    body = {
        "tenant_id": str(section_a.tenant_id),
        "name": "p95 over 800 ms",
        "description": "Checkout is slow",
        "enabled": False,
        "severity": "critical",
        "condition": {
            "metric": "response_time_ms",
            "operator": "greater_than",
            "threshold": 800.5,
            "aggregation": "p95",
            "window_seconds": 600,
            "duration_seconds": 120,
            "filters": {
                "section_ids": [str(section_a.pk)],
                "endpoint_ids": [str(endpoint.pk), str(endpoint.pk)],
                "endpoint_tag_ids": [str(tag.pk)],
                "agent_ids": [str(agent.pk)],
                "metric_types": ["http_check", "httpget", "icmp_ping"],
            },
        },
        "quorum": {"min_agents": 2, "min_percent": 60},
        "notifications": [str(channel_a.pk)],
        "cooldown_seconds": 0,
        "notify_on_resolve": False,
    }
    response = client_for(oscar).post(f"{prefix}/alert-rules", body, format="json")
    assert response.status_code == 201, response.content
    rule = AlertRule.objects.get(pk=response.json()["id"])
    assert (rule.metric, rule.operator, rule.threshold, rule.aggregation) == (
        "response_time_ms",
        "greater_than",
        800.5,
        "p95",
    )
    assert (rule.window_seconds, rule.duration_seconds, rule.quorum_min_agents, rule.quorum_min_percent) == (
        600,
        120,
        2,
        60,
    )
    assert rule.filters == {
        "section_ids": [str(section_a.pk)],
        "endpoint_ids": [str(endpoint.pk)],
        "endpoint_tag_ids": [str(tag.pk)],
        "agent_ids": [str(agent.pk)],
        "metric_types": ["httpget", "ping"],  # upstream's names stored as the agent's
    }
    assert list(rule.channels.all()) == [channel_a]
    assert (rule.enabled, rule.severity, rule.cooldown_seconds, rule.notify_on_resolve) == (False, "critical", 0, False)
    answer = response.json()
    assert answer["condition"]["filters"] == rule.filters
    assert answer["quorum"] == {"min_agents": 2, "min_percent": 60.0}
    assert answer["builtin"] == ""
    assert AuditEvent.objects.filter(action="alert_rule.create", actor=oscar, object_id=str(rule.pk)).exists()


def test_the_defaults_fill_what_a_body_leaves_out(client_for, oscar, tenant_a):
    body = {
        "tenant_id": str(tenant_a.pk),
        "name": "Down",
        "condition": {"metric": "status", "operator": "equals", "threshold": 1},
    }
    answer = client_for(oscar).post(URL, body, format="json").json()
    assert answer["condition"] | {"filters": None} == {
        "metric": "status",
        "operator": "equals",
        "threshold": 1.0,
        "aggregation": "avg",
        "window_seconds": 300,
        "duration_seconds": 0,
        "filters": None,
    }
    assert (answer["enabled"], answer["severity"], answer["cooldown_seconds"], answer["notify_on_resolve"]) == (
        True,
        "warning",
        300,
        True,
    )
    assert (answer["quorum"], answer["notifications"], answer["description"]) == (
        {"min_agents": 1, "min_percent": 50.0},
        [],
        "",
    )


def test_another_agent_offline_rule_needs_no_operator_nor_threshold(client_for, oscar, tenant_a, section_a):
    body = {
        "tenant_id": str(tenant_a.pk),
        "name": "Edge agents offline",
        "condition": {"metric": "agent_offline", "filters": {"section_ids": [str(section_a.pk)]}},
    }
    response = client_for(oscar).post(URL, body, format="json")
    assert response.status_code == 201, response.content
    assert AlertRule.objects.get(pk=response.json()["id"]).builtin == ""


def test_tenant_id_may_be_left_out_by_a_member_of_one_tenant(client_for, oscar, tenant_a):
    body = {"name": "Lossy", "condition": {"metric": "packet_loss_percent", "operator": "greater_than", "threshold": 5}}
    response = client_for(oscar).post(URL, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["tenant_id"] == str(tenant_a.pk)


@pytest.mark.parametrize("who", ["member-of-two", "superuser"])
def test_tenant_id_is_required_of_someone_in_several_tenants(
    request, client_for, oscar, tenant_b, db_state, assert_error, who
):
    if who == "member-of-two":
        MembershipFactory(user=oscar, tenant=tenant_b, role="operator")
        user = oscar
    else:
        user = request.getfixturevalue("superuser")
    body = {"name": "Lossy", "condition": {"metric": "packet_loss_percent", "operator": "greater_than", "threshold": 5}}
    before = db_state()
    assert_error(client_for(user).post(URL, body, format="json"), 400, "validation_error", field="tenant_id")
    assert db_state() == before


def test_a_patch_changes_only_what_it_names(client_for, oscar, rule_a, section_a, channel_a):
    agent = AgentFactory(section=section_a)
    rule_a.filters = {"section_ids": [str(section_a.pk)]}
    rule_a.save()
    body = {"condition": {"threshold": 900, "filters": {"agent_ids": [str(agent.pk)]}}, "quorum": {"min_agents": 3}}
    response = client_for(oscar).patch(f"{URL}/{rule_a.pk}", body, format="json")
    assert response.status_code == 200, response.content
    rule_a.refresh_from_db()
    assert (rule_a.threshold, rule_a.metric, rule_a.quorum_min_agents, rule_a.quorum_min_percent) == (
        900,
        "response_time_ms",
        3,
        50,
    )
    assert (rule_a.filters["section_ids"], rule_a.filters["agent_ids"]) == ([str(section_a.pk)], [str(agent.pk)])
    assert list(rule_a.channels.all()) == [channel_a]
    assert response.json()["condition"]["filters"]["agent_ids"] == [str(agent.pk)]


def test_a_patch_replaces_and_clears_the_channels(client_for, oscar, rule_a, tenant_a):
    other = channel_of(tenant_a, name="pager")
    client = client_for(oscar)
    response = client.patch(f"{URL}/{rule_a.pk}", {"notifications": [str(other.pk)]}, format="json")
    assert response.json()["notifications"] == [str(other.pk)]
    response = client.patch(f"{URL}/{rule_a.pk}", {"notifications": []}, format="json")
    assert (response.status_code, response.json()["notifications"]) == (200, [])
    assert AuditEvent.objects.filter(action="alert_rule.update", object_id=str(rule_a.pk)).count() == 2


def test_an_operator_deletes_a_rule_with_its_incidents(client_for, oscar, rule_a):
    incident = incident_of(rule_a)
    assert client_for(oscar).delete(f"{URL}/{rule_a.pk}").status_code == 204
    assert not AlertRule.objects.filter(pk=rule_a.pk).exists()
    assert not Incident.objects.filter(pk=incident.pk).exists()
    assert AuditEvent.objects.filter(action="alert_rule.delete", actor=oscar).exists()


# ---------------------------------------------------------------------------------------------
# The built-in agent_offline rule


@pytest.fixture
def builtin_a(tenant_a):
    return builtin_rule(tenant_a)


def test_the_builtin_rule_cannot_be_deleted(client_for, alice, builtin_a, db_state, assert_error):
    before = db_state()
    body = assert_error(client_for(alice).delete(f"{URL}/{builtin_a.pk}"), 409, "builtin_rule")
    assert "disable it instead" in body["message"]
    assert db_state() == before


def test_the_builtin_rule_is_edited_within_its_limits(client_for, oscar, builtin_a, section_a, channel_a):
    agent = AgentFactory(section=section_a)
    body = {
        "name": "Probe offline",
        "description": "Paging the NOC",
        "enabled": False,
        "severity": "critical",
        "notifications": [str(channel_a.pk)],
        "cooldown_seconds": 600,
        "notify_on_resolve": False,
        # Restating what it already is is no change.
        "condition": {
            "metric": "agent_offline",
            "duration_seconds": 120,
            "filters": {"section_ids": [str(section_a.pk)], "agent_ids": [str(agent.pk)]},
        },
    }
    response = client_for(oscar).patch(f"{URL}/{builtin_a.pk}", body, format="json")
    assert response.status_code == 200, response.content
    builtin_a.refresh_from_db()
    assert (builtin_a.name, builtin_a.enabled, builtin_a.severity, builtin_a.duration_seconds) == (
        "Probe offline",
        False,
        "critical",
        120,
    )
    assert (builtin_a.metric, builtin_a.builtin) == ("agent_offline", "agent_offline")
    assert builtin_a.filters["agent_ids"] == [str(agent.pk)]
    assert list(builtin_a.channels.all()) == [channel_a]
    assert response.json()["builtin"] == "agent_offline"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"condition": {"metric": "status"}}, "condition.metric"),
        ({"condition": {"threshold": 5}}, "condition.threshold"),
        ({"condition": {"window_seconds": 600}}, "condition.window_seconds"),
        ({"quorum": {"min_agents": 2}}, "quorum.min_agents"),
        ({"condition": {"filters": {"endpoint_ids": "OWN_ENDPOINT"}}}, "condition.filters.endpoint_ids"),
        ({"builtin": ""}, None),  # read-only: ignored, never a way out of the limits
    ],
    ids=["metric", "threshold", "window", "quorum", "endpoint-filter", "builtin-flag"],
)
def test_the_builtin_rule_keeps_its_condition(
    client_for, oscar, builtin_a, section_a, db_state, assert_error, change, field
):
    if "OWN_ENDPOINT" in str(change):
        change = {"condition": {"filters": {"endpoint_ids": [str(EndpointFactory(section=section_a).pk)]}}}
    before = db_state()
    response = client_for(oscar).patch(f"{URL}/{builtin_a.pk}", change, format="json")
    if field is None:
        assert response.status_code == 200
        assert AlertRule.objects.get(pk=builtin_a.pk).builtin == AGENT_OFFLINE
        return
    body = assert_error(response, 400, "validation_error", field=field)
    assert "cannot change" in body["message"] or "agent_offline rules watch agents" in body["message"]
    assert db_state() == before


def test_every_tenant_gets_its_builtin_rule(client_for, bob, tenant_b):
    listed = client_for(bob).get(URL).json()["alert_rules"]
    assert [(rule["builtin"], rule["condition"]["metric"]) for rule in listed] == [("agent_offline", "agent_offline")]


def test_a_second_tenant_of_a_member_shows_both_tenants_rules(client_for, oscar, rule_a):
    other = TenantFactory(name="Tenant C")
    MembershipFactory(user=oscar, tenant=other, role="viewer")
    tenants = {rule["tenant_id"] for rule in client_for(oscar).get(URL).json()["alert_rules"]}
    assert tenants == {str(rule_a.tenant_id), str(other.pk)}
