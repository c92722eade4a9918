"""config_version: it increases whenever an agent's configuration document could change, and only then."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent
from agents.services.management import agent_update
from agents.services.presence import agent_seen
from endpoints import services
from tenants.services import Actor
from tests.factories import AgentFactory, EndpointFactory, SectionFactory, TagFactory, TopologyFactory

pytestmark = pytest.mark.django_db


def _as(user) -> Actor:
    return Actor(user=user, label=f"user:{user.username}")


def _version(agent) -> int:
    return Agent.objects.with_document_version().get(pk=agent.pk).document_version


@pytest.fixture
def agent(section_a):
    return AgentFactory(section=section_a, name="probe-1")


@pytest.fixture
def bystanders(section_a, section_b):
    """Agents that must not be bumped by changes in section A: one in another section of tenant A,
    one in tenant B."""
    return [AgentFactory(section=SectionFactory(tenant=section_a.tenant)), AgentFactory(section=section_b)]


def test_the_checked_sequence_through_the_services(oscar, section_a, agent, bystanders):
    actor = _as(oscar)
    neighbour = AgentFactory(section=section_a, name="probe-2")
    assert _version(agent) == 1

    agent_tag = services.tag_create(actor=actor, section=section_a, name="probes", scope="agent")
    assert _version(agent) == 1  # a tag nobody uses changes no configuration
    agent_update(actor=actor, agent=agent, tag_ids=[agent_tag.pk])
    assert _version(agent) == 2

    first = services.endpoint_create(actor=actor, section=section_a, address="192.0.2.1")
    second = services.endpoint_create(actor=actor, section=section_a, address="example.org", port=443)
    assert _version(agent) == 4

    endpoint_tag = services.tag_create(actor=actor, section=section_a, name="targets", scope="endpoint")
    services.endpoint_update(actor=actor, endpoint=first, tag_ids=[endpoint_tag.pk])
    services.endpoint_update(actor=actor, endpoint=second, tag_ids=[endpoint_tag.pk])
    assert _version(agent) == 6

    topology = services.topology_create(actor=actor, section=section_a, name="mesh", type="full-mesh")
    assert _version(agent) == 7

    services.topology_member_add(actor=actor, topology=topology, tag=agent_tag, role="monitor")
    services.topology_member_add(actor=actor, topology=topology, tag=endpoint_tag, role="target")
    assert _version(agent) == 9

    # The other agent of the section saw every section-wide change but not the link of the agent tag.
    assert _version(neighbour) == 8
    assert [_version(other) for other in bystanders] == [1, 1]


def test_the_checked_sequence_through_the_api(client_for, oscar, section_a, agent, bystanders):
    client = client_for(oscar)
    section = str(section_a.pk)

    def config_version() -> int:
        return client.get(f"/api/v1/agents/{agent.pk}").json()["configVersion"]

    assert config_version() == 1
    body = {"section_id": section, "name": "probes", "scope": "agent"}
    agent_tag = client.post("/api/v1/tags", body, format="json").json()["id"]
    response = client.patch(f"/api/v1/agents/{agent.pk}", {"tag_ids": [agent_tag]}, format="json")
    assert response.json()["configVersion"] == 2

    endpoints = [
        client.post("/api/v1/endpoints", {"section_id": section, "address": address}, format="json").json()["id"]
        for address in ("192.0.2.1", "example.org")
    ]
    assert config_version() == 4

    body = {"section_id": section, "name": "targets", "scope": "endpoint"}
    endpoint_tag = client.post("/api/v1/tags", body, format="json").json()["id"]
    for endpoint in endpoints:
        response = client.patch(f"/api/v1/endpoints/{endpoint}", {"tag_ids": [endpoint_tag]}, format="json")
        assert response.status_code == 200
    assert config_version() == 6

    body = {"section_id": section, "name": "mesh", "type": "full-mesh"}
    topology = client.post("/api/v1/topologies", body, format="json").json()["id"]
    assert config_version() == 7

    client.patch(f"/api/v1/topologies/{topology}", {"monitor_tag_ids": [agent_tag]}, format="json")
    client.patch(f"/api/v1/topologies/{topology}", {"target_tag_ids": [endpoint_tag]}, format="json")
    assert config_version() == 9
    assert [_version(other) for other in bystanders] == [1, 1]


def test_renaming_a_tag_bumps_the_section(oscar, section_a, agent, bystanders):
    tag = TagFactory(section=section_a, name="old")
    services.tag_update(actor=_as(oscar), tag=tag, name="new")
    assert _version(agent) == 2
    assert [_version(other) for other in bystanders] == [1, 1]


def test_renaming_a_tag_through_the_api_bumps(client_for, oscar, section_a, agent):
    tag = TagFactory(section=section_a, name="old")
    assert client_for(oscar).patch(f"/api/v1/tags/{tag.pk}", {"name": "new"}, format="json").status_code == 200
    assert _version(agent) == 2


@pytest.mark.parametrize(
    "change",
    [
        lambda actor, endpoint, topology, tag: services.endpoint_update(actor=actor, endpoint=endpoint, port=8080),
        lambda actor, endpoint, topology, tag: services.endpoint_update(actor=actor, endpoint=endpoint, enabled=False),
        lambda actor, endpoint, topology, tag: services.endpoint_update(
            actor=actor, endpoint=endpoint, address="x.org"
        ),
        lambda actor, endpoint, topology, tag: services.endpoint_delete(actor=actor, endpoint=endpoint),
        lambda actor, endpoint, topology, tag: services.tag_delete(actor=actor, tag=tag),
        lambda actor, endpoint, topology, tag: services.topology_update(actor=actor, topology=topology, enabled=False),
        lambda actor, endpoint, topology, tag: services.topology_delete(actor=actor, topology=topology),
        lambda actor, endpoint, topology, tag: services.topology_member_remove(
            actor=actor, member=topology.members.get()
        ),
    ],
    ids=[
        "endpoint-port",
        "endpoint-enabled",
        "endpoint-address",
        "endpoint-delete",
        "tag-delete",
        "topology-update",
        "topology-delete",
        "member-remove",
    ],
)
def test_each_change_in_the_section_bumps_once(oscar, section_a, agent, bystanders, change):
    tag = TagFactory(section=section_a, scope="endpoint")
    endpoint = EndpointFactory(section=section_a, tags=[tag])
    topology = TopologyFactory(section=section_a)
    topology.members.create(tag=tag, role="target")
    change(_as(oscar), endpoint, topology, tag)
    assert _version(agent) == 2
    assert [_version(other) for other in bystanders] == [1, 1]


def test_changes_in_another_section_do_not_bump(oscar, bob, section_a, section_b, agent):
    other_a = SectionFactory(tenant=section_a.tenant)
    for actor, section in ((_as(oscar), other_a), (_as(bob), section_b)):
        tag = services.tag_create(actor=actor, section=section, name="t", scope="endpoint")
        services.tag_update(actor=actor, tag=tag, name="t2")
        endpoint = services.endpoint_create(actor=actor, section=section, address="192.0.2.9", tag_ids=[tag.pk])
        services.endpoint_update(actor=actor, endpoint=endpoint, port=22)
        topology = services.topology_create(actor=actor, section=section, name="m", type="one-way")
        services.topology_member_add(actor=actor, topology=topology, tag=tag, role="target")
        services.endpoint_delete(actor=actor, endpoint=endpoint)
    assert _version(agent) == 1


def test_last_seen_and_result_updates_do_not_bump(agent):
    now = timezone.now()
    Agent.objects.filter(pk=agent.pk).update(last_seen_at=now, last_result_at=now)
    agent_seen(Agent.objects.get(pk=agent.pk), result=True, now=now + timedelta(minutes=1))
    agent.refresh_from_db()
    assert agent.last_result_at == now + timedelta(minutes=1)
    assert _version(agent) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "renamed"},
        {"monitoring_overrides": {"interval_secs": 30}},
        {"server_overrides": {"report_interval_secs": 60}},
        {"storage_overrides": {"max_cached_results": 10}},
        {"name": "renamed", "monitoring_overrides": {"ping_count": 5}, "tag_ids": []},
    ],
    ids=["name", "monitoring", "server", "storage", "several-at-once"],
)
def test_an_agent_change_bumps_that_agent_once(oscar, section_a, agent, bystanders, changes):
    neighbour = AgentFactory(section=section_a)
    agent_update(actor=_as(oscar), agent=agent, **changes)
    assert _version(agent) == 2
    assert _version(neighbour) == 1
    assert [_version(other) for other in bystanders] == [1, 1]


def test_moving_an_agent_with_a_self_endpoint_bumps_both_sections(oscar, section_a, agent):
    new_section = SectionFactory(tenant=section_a.tenant)
    agent.self_endpoint = EndpointFactory(section=section_a)
    agent.save()
    old_neighbour, new_neighbour = AgentFactory(section=section_a), AgentFactory(section=new_section)
    agent_update(actor=_as(oscar), agent=agent, section=new_section)
    assert (_version(agent), _version(old_neighbour), _version(new_neighbour)) == (2, 2, 2)
    agent.self_endpoint.refresh_from_db()
    assert agent.self_endpoint.section == new_section


def test_a_stale_agent_instance_loses_no_concurrent_update(oscar, section_a, agent):
    """agent_update writes only what it changes: a bump, a heartbeat or a revocation that happened
    after the instance was loaded survives it."""
    stale = Agent.objects.get(pk=agent.pk)
    services.endpoint_create(actor=_as(oscar), section=section_a, address="192.0.2.1")  # version 2
    seen = timezone.now()
    Agent.objects.filter(pk=agent.pk).update(last_seen_at=seen, revoked_at=seen)
    updated = agent_update(actor=_as(oscar), agent=stale, name="renamed")
    agent.refresh_from_db()
    assert (agent.name, _version(agent)) == ("renamed", 3)
    assert (agent.last_seen_at, agent.revoked_at) == (seen, seen)
    assert updated.document_version == 3


def test_refused_changes_do_not_bump(client_for, oscar, section_a, section_b, agent, assert_error):
    client = client_for(oscar)
    foreign = TagFactory(section=section_b)
    TagFactory(section=section_a, name="taken")
    tag = TagFactory(section=section_a, name="mine")
    body = {"section_id": str(section_a.pk), "address": "example.org", "tag_ids": [str(foreign.pk)]}
    assert_error(client.post("/api/v1/endpoints", body, format="json"), 400, "validation_error")
    assert_error(client.patch(f"/api/v1/tags/{tag.pk}", {"name": "taken"}, format="json"), 409, "already_exists")
    body = {"monitoring_overrides": {"interval_secs": 0}}
    assert_error(client.patch(f"/api/v1/agents/{agent.pk}", body, format="json"), 400, "validation_error")
    assert _version(agent) == 1
