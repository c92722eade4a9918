"""{prefix}/agents for people: the list of contract §7 (camelCase), detail and PATCH."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from agents.models import Agent
from tenants.models import AuditEvent
from tests.api_cases import ResourceAPICases
from tests.factories import AgentFactory, MembershipFactory, SectionFactory, TagFactory, TenantFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/agents"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CONTRACT_KEYS = {
    "id",
    "name",
    "sectionId",
    "agentVersion",
    "configVersion",
    "ipAddresses",
    "lastSeenAt",
    "lastResultSubmittedAt",
    "createdAt",
    "updatedAt",
    "status",
}


@pytest.fixture
def agent_a(section_a):
    return AgentFactory(section=section_a, name="probe-a", hostname="probe-a.lan", ip_addresses=["192.0.2.10"])


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [agent["name"] for agent in response.json()["agents"]]


class TestAgentsAPI(ResourceAPICases):
    """401, cross-tenant, viewer, bad-input, pagination and verb cases (tests/api_cases.py).

    Agents come from registration and claim, not from this API: no POST (405). Operators change
    them and rotate or revoke their keys; only admins delete them."""

    path = "/agents"
    items_key = "agents"
    model = Agent
    operations = ("list", "retrieve", "update", "delete")
    actions = ("revoke", "rotate-key")
    write_role = {"update": "operator", "delete": "admin"}
    bad_changes = [
        ("empty-name", {"name": ""}, "name"),
        ("long-name", {"name": "x" * 201}, "name"),
        ("malformed-tag-id", {"tag_ids": ["nope"]}, "tag_ids[0]"),
        ("tags-of-another-section", {"tag_ids": "OTHER_SECTION_TAGS"}, "tag_ids"),
        ("tags-of-another-tenant", {"tag_ids": "OTHER_TENANT_TAGS"}, "tag_ids"),
        ("bad-section-id", {"section_id": "not-a-uuid"}, "section_id"),
        ("section-of-another-tenant", {"section_id": "OTHER_TENANT_SECTION"}, "section_id"),
        ("tags-left-behind-by-a-move", {"section_id": "OTHER_SECTION", "tag_ids": "MY_TAGS"}, "tag_ids"),
        ("interval-zero", {"monitoring_overrides": {"interval_secs": 0}}, "monitoring_overrides.interval_secs"),
        ("interval-a-string", {"monitoring_overrides": {"interval_secs": "60"}}, "monitoring_overrides.interval_secs"),
        ("interval-a-bool", {"monitoring_overrides": {"interval_secs": True}}, "monitoring_overrides.interval_secs"),
        ("interval-a-float", {"monitoring_overrides": {"interval_secs": 1.5}}, "monitoring_overrides.interval_secs"),
        ("ping-count-too-high", {"monitoring_overrides": {"ping_count": 101}}, "monitoring_overrides.ping_count"),
        (
            "traceroute-not-a-bool",
            {"monitoring_overrides": {"traceroute_on_failure": "yes"}},
            "monitoring_overrides.traceroute_on_failure",
        ),
        ("unknown-monitoring-key", {"monitoring_overrides": {"colour": "blue"}}, "monitoring_overrides.colour"),
        ("monitoring-not-an-object", {"monitoring_overrides": [1]}, "monitoring_overrides"),
        ("server-api-key", {"server_overrides": {"api_key": "sekrit"}}, "server_overrides.api_key"),
        ("server-blank-url", {"server_overrides": {"url": "  "}}, "server_overrides.url"),
        ("server-negative-retries", {"server_overrides": {"retry_attempts": -1}}, "server_overrides.retry_attempts"),
        ("server-url-with-nul", {"server_overrides": {"url": "https://a\u0000b"}}, "server_overrides.url"),
        ("cache-dir-with-nul", {"storage_overrides": {"cache_dir": "/tmp/\u0000"}}, "storage_overrides.cache_dir"),
        (
            "cache-age-zero",
            {"storage_overrides": {"max_cache_age_secs": 0}},
            "storage_overrides.max_cache_age_secs",
        ),
        ("storage-not-an-object", {"storage_overrides": "big"}, "storage_overrides"),
        # A valid rename in the same body is rolled back with the refused override.
        (
            "rename-with-a-bad-override",
            {"name": "fine", "monitoring_overrides": {"timeout_secs": 0}},
            "monitoring_overrides.timeout_secs",
        ),
    ]

    @pytest.fixture
    def object_a(self, agent_a):
        return agent_a

    @pytest.fixture
    def object_b(self, section_b):
        return AgentFactory(section=section_b, name="probe-b")

    @pytest.fixture
    def update_body(self):
        return {"name": "mine"}

    @pytest.fixture
    def placeholders(self, section_a, section_b):
        other_section = SectionFactory(tenant=section_a.tenant)
        return {
            "OTHER_SECTION": str(other_section.pk),
            "OTHER_TENANT_SECTION": str(section_b.pk),
            "OTHER_SECTION_TAGS": [str(TagFactory(section=other_section).pk)],
            "OTHER_TENANT_TAGS": [str(TagFactory(section=section_b).pk)],
            "MY_TAGS": [str(TagFactory(section=section_a).pk)],
        }


def test_the_list_has_exactly_the_contract_keys(client_for, vera, section_a):
    seen = NOW - timedelta(minutes=1)
    agent = AgentFactory(
        section=section_a,
        name="probe",
        agent_version="2.0.1",
        ip_addresses=["192.0.2.1", "2001:db8::1"],
        last_seen_at=seen,
        last_result_at=seen,
        config_version=7,
    )
    with time_machine.travel(NOW, tick=False):
        response = client_for(vera).get(URL)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"agents", "pagination"}
    [item] = body["agents"]
    assert set(item) == CONTRACT_KEYS
    agent.refresh_from_db()
    assert item == {
        "id": str(agent.pk),
        "name": "probe",
        "sectionId": str(section_a.pk),
        "agentVersion": "2.0.1",
        "configVersion": 7,
        "ipAddresses": ["192.0.2.1", "2001:db8::1"],
        "lastSeenAt": _iso(seen),
        "lastResultSubmittedAt": _iso(seen),
        "createdAt": _iso(agent.created_at),
        "updatedAt": _iso(agent.updated_at),
        "status": "online",
    }


def test_a_never_seen_agent_has_null_times(client_for, vera, agent_a):
    [item] = client_for(vera).get(URL).json()["agents"]
    assert (item["lastSeenAt"], item["lastResultSubmittedAt"], item["status"]) == (None, None, "never_seen")


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_it_serves_agents_under_every_prefix(client_for, vera, agent_a, prefix):
    client = client_for(vera)
    assert _names(client.get(f"{prefix}/agents")) == ["probe-a"]
    assert client.get(f"{prefix}/agents/{agent_a.pk}").json()["id"] == str(agent_a.pk)


def test_a_viewer_retrieves_the_detail(client_for, vera, agent_a, section_a):
    tag = TagFactory(section=section_a, scope="agent")
    agent_a.tags.set([tag])
    body = client_for(vera).get(f"{URL}/{agent_a.pk}").json()
    assert set(body) >= CONTRACT_KEYS
    assert body["tagIds"] == [str(tag.pk)]
    assert body["hostname"] == "probe-a.lan"
    assert (body["monitoringOverrides"], body["serverOverrides"], body["storageOverrides"]) == ({}, {}, {})
    assert (body["selfEndpointId"], body["revokedAt"]) == (None, None)
    assert "apiKeyHash" not in body and "api_key_hash" not in body


def test_members_see_only_their_tenants_agents(client_for, alice, bob, superuser, agent_a, section_b):
    AgentFactory(section=section_b, name="probe-b")
    assert _names(client_for(alice).get(URL)) == ["probe-a"]
    assert _names(client_for(bob).get(URL)) == ["probe-b"]
    assert _names(client_for(superuser).get(URL)) == ["probe-a", "probe-b"]


# Filters


def test_it_filters_by_section(client_for, alice, agent_a, section_a, section_b):
    other = SectionFactory(tenant=section_a.tenant)
    AgentFactory(section=other, name="probe-other")
    AgentFactory(section=section_b, name="probe-b")
    client = client_for(alice)
    assert _names(client.get(URL, {"section": str(section_a.pk)})) == ["probe-a"]
    assert _names(client.get(URL, {"section": str(other.pk)})) == ["probe-other"]
    assert _names(client.get(URL, {"section": str(section_b.pk)})) == []  # not even by its id


@pytest.fixture
def agents_by_status(section_a):
    offline_after = timedelta(minutes=15)
    return {
        "online": AgentFactory(section=section_a, name="online", last_seen_at=NOW - timedelta(minutes=1)),
        "edge": AgentFactory(section=section_a, name="edge", last_seen_at=NOW - offline_after),
        "offline": AgentFactory(
            section=section_a, name="offline", last_seen_at=NOW - offline_after - timedelta(seconds=1)
        ),
        "never_seen": AgentFactory(section=section_a, name="never"),
        "revoked": AgentFactory(
            section=section_a, name="revoked", last_seen_at=NOW - timedelta(minutes=1), revoked_at=NOW
        ),
    }


@pytest.mark.parametrize(
    ("status", "names"),
    [
        ("online", ["edge", "online"]),
        ("offline", ["offline"]),
        ("never_seen", ["never"]),
        ("revoked", ["revoked"]),
    ],
)
def test_it_filters_by_status(client_for, vera, agents_by_status, status, names):
    with time_machine.travel(NOW, tick=False):
        response = client_for(vera).get(URL, {"status": status})
    assert _names(response) == names
    assert {agent["status"] for agent in response.json()["agents"]} == {status}


def test_the_status_follows_the_clock(client_for, vera, agents_by_status):
    with time_machine.travel(NOW, tick=False):
        client = client_for(vera)
        statuses = {a["name"]: a["status"] for a in client.get(URL).json()["agents"]}
    assert statuses == {
        "online": "online",
        "edge": "online",
        "offline": "offline",
        "never": "never_seen",
        "revoked": "revoked",
    }
    with time_machine.travel(NOW + timedelta(minutes=15), tick=False):
        assert _names(client.get(URL, {"status": "online"})) == []
        assert _names(client.get(URL, {"status": "offline"})) == ["edge", "offline", "online"]


def test_the_status_uses_the_configured_offline_after(client_for, vera, agents_by_status, settings):
    smotra = settings.SMOTRA
    settings.SMOTRA = dataclasses.replace(smotra, agent=dataclasses.replace(smotra.agent, offline_after=30.0))
    with time_machine.travel(NOW, tick=False):
        response = client_for(vera).get(URL, {"status": "offline"})
    assert _names(response) == ["edge", "offline", "online"]


def test_it_filters_by_tag_id_or_name(client_for, vera, section_a, agent_a):
    edge = TagFactory(section=section_a, name="edge", scope="agent")
    core = TagFactory(section=section_a, name="core", scope="agent")
    agent_a.tags.set([edge, core])
    AgentFactory(section=section_a, name="probe-core", tags=[core])
    AgentFactory(section=section_a, name="probe-none")
    client = client_for(vera)
    assert _names(client.get(URL, {"tag": str(edge.pk)})) == ["probe-a"]
    assert _names(client.get(URL, {"tag": "core"})) == ["probe-a", "probe-core"]
    assert _names(client.get(URL, {"tag": "missing"})) == []


def test_it_does_not_match_tags_of_other_tenants(client_for, bob, section_a, section_b):
    tag = TagFactory(section=section_a, name="shared-name")
    AgentFactory(section=section_a, name="probe-a", tags=[tag])
    AgentFactory(section=section_b, name="probe-b", tags=[TagFactory(section=section_b, name="shared-name")])
    client = client_for(bob)
    assert _names(client.get(URL, {"tag": "shared-name"})) == ["probe-b"]
    assert _names(client.get(URL, {"tag": str(tag.pk)})) == []


def test_it_searches_name_hostname_and_id(client_for, vera, section_a, agent_a):
    other = AgentFactory(section=section_a, name="berlin-1", hostname="fra.example")
    client = client_for(vera)
    assert _names(client.get(URL, {"search": "PROBE"})) == ["probe-a"]
    assert _names(client.get(URL, {"search": "fra.ex"})) == ["berlin-1"]
    assert _names(client.get(URL, {"search": str(other.pk)})) == ["berlin-1"]
    assert _names(client.get(URL, {"search": "nothing"})) == []


def test_filters_combine(client_for, vera, section_a, agents_by_status):
    tag = TagFactory(section=section_a, name="t")
    agents_by_status["online"].tags.set([tag])
    agents_by_status["offline"].tags.set([tag])
    with time_machine.travel(NOW, tick=False):
        response = client_for(vera).get(URL, {"tag": "t", "status": "online", "section": str(section_a.pk)})
    assert _names(response) == ["online"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "dead"}, "status"),
        ({"section": "not-a-uuid"}, "section"),
        ({"tag": "x" * 101}, "tag"),
    ],
)
def test_it_rejects_bad_list_queries(client_for, vera, agent_a, assert_error, query, field):
    assert_error(client_for(vera).get(URL, query), 400, "validation_error", field=field)


def test_it_paginates_agents(client_for, vera, section_a):
    AgentFactory.create_batch(25, section=section_a)
    client = client_for(vera)
    pages = [client.get(URL, {"page": page, "page_size": 10}).json() for page in (1, 2, 3, 4)]
    assert [len(page["agents"]) for page in pages] == [10, 10, 5, 0]
    assert pages[0]["pagination"] == {
        "page": 1,
        "page_size": 10,
        "total_items": 25,
        "total_pages": 3,
        "has_next": True,
        "has_previous": False,
    }
    assert [page["pagination"]["has_next"] for page in pages] == [True, True, False, False]
    assert len({agent["id"] for page in pages for agent in page["agents"]}) == 25
    assert client.get(URL).json()["pagination"]["page_size"] == 20


# PATCH


def test_an_operator_renames_and_tags_an_agent(client_for, oscar, agent_a, section_a):
    tag = TagFactory(section=section_a, scope="agent")
    body = {"name": "probe-renamed", "tag_ids": [str(tag.pk)]}
    response = client_for(oscar).patch(f"{URL}/{agent_a.pk}", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "probe-renamed"
    assert response.json()["tagIds"] == [str(tag.pk)]
    assert response.json()["configVersion"] == 2
    agent_a.refresh_from_db()
    assert (agent_a.name, list(agent_a.tags.all()), agent_a.config_version) == ("probe-renamed", [tag], 2)
    event = AuditEvent.objects.get(action="agent.update")
    assert (event.actor, event.object_id) == (oscar, str(agent_a.pk))


def test_each_patch_bumps_the_version_once(client_for, oscar, agent_a):
    client = client_for(oscar)
    for expected, body in enumerate(
        [{"name": "a"}, {"monitoring_overrides": {"interval_secs": 30}}, {"tag_ids": []}, {}], start=2
    ):
        assert client.patch(f"{URL}/{agent_a.pk}", body, format="json").json()["configVersion"] == expected


def test_an_operator_sets_overrides(client_for, oscar, agent_a):
    body = {
        "monitoring_overrides": {"interval_secs": 30, "traceroute_on_failure": True},
        "server_overrides": {"heartbeat_interval_secs": 60, "url": "https://monitor.example"},
        "storage_overrides": {"max_cached_results": 500},
    }
    response = client_for(oscar).patch(f"{URL}/{agent_a.pk}", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["monitoringOverrides"] == {"interval_secs": 30, "traceroute_on_failure": True}
    agent_a.refresh_from_db()
    assert agent_a.server_overrides == {"heartbeat_interval_secs": 60, "url": "https://monitor.example"}
    assert agent_a.storage_overrides == {"max_cached_results": 500}


def test_an_operator_moves_an_agent_to_another_section(client_for, oscar, agent_a, section_a):
    old_tag = TagFactory(section=section_a)
    agent_a.tags.set([old_tag])
    target = SectionFactory(tenant=section_a.tenant)
    new_tag = TagFactory(section=target)
    client = client_for(oscar)
    response = client.patch(f"{URL}/{agent_a.pk}", {"section_id": str(target.pk)}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["sectionId"], response.json()["tagIds"]) == (str(target.pk), [])
    body = {"section_id": str(section_a.pk), "tag_ids": [str(old_tag.pk)]}
    assert client.patch(f"{URL}/{agent_a.pk}", body, format="json").json()["tagIds"] == [str(old_tag.pk)]
    body = {"section_id": str(target.pk), "tag_ids": [str(new_tag.pk)]}
    assert client.patch(f"{URL}/{agent_a.pk}", body, format="json").json()["tagIds"] == [str(new_tag.pk)]
    agent_a.refresh_from_db()
    assert (agent_a.section, list(agent_a.tags.all())) == (target, [new_tag])


def test_it_refuses_a_move_to_a_section_where_the_operator_only_views(
    client_for, oscar, agent_a, db_state, assert_error
):
    elsewhere = SectionFactory(tenant=TenantFactory(name="Tenant C"))
    MembershipFactory(user=oscar, tenant=elsewhere.tenant, role="viewer")
    before = db_state()
    response = client_for(oscar).patch(f"{URL}/{agent_a.pk}", {"section_id": str(elsewhere.pk)}, format="json")
    assert_error(response, 403, "forbidden")
    assert db_state() == before


def test_another_tenant_cannot_find_or_pull_an_agent(client_for, bob, agent_a, section_b, db_state, assert_error):
    client = client_for(bob)
    before = db_state()
    assert _names(client.get(URL, {"search": str(agent_a.pk)})) == []
    body = {"section_id": str(section_b.pk)}  # pulling A's agent into B
    assert_error(client.patch(f"{URL}/{agent_a.pk}", body, format="json"), 404, "not_found")
    assert db_state() == before


def test_an_operator_cannot_push_an_agent_into_another_tenant(
    client_for, oscar, agent_a, section_b, db_state, assert_error
):
    before = db_state()
    response = client_for(oscar).patch(f"{URL}/{agent_a.pk}", {"section_id": str(section_b.pk)}, format="json")
    assert_error(response, 400, "validation_error", field="section_id")
    assert db_state() == before
