"""Topology resolution and the configuration document's content (contract §6.1), service level."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from agents.models import Agent
from agents.services.configuration import configuration_render, monitored_endpoints
from endpoints.models import Endpoint, Tag, Topology
from tests.factories import (
    AgentFactory,
    EndpointFactory,
    SectionFactory,
    TagFactory,
    TopologyFactory,
    TopologyMemberFactory,
)

pytestmark = pytest.mark.django_db

DEFAULT_MONITORING = {
    "interval_secs": 60,
    "timeout_secs": 5,
    "ping_count": 3,
    "max_concurrent": 10,
    "traceroute_on_failure": False,
    "traceroute_max_hops": 30,
}
DEFAULT_SERVER = {
    "url": None,
    "api_key": None,
    "report_interval_secs": 300,
    "heartbeat_interval_secs": 300,
    "verify_tls": True,
    "timeout_secs": 30,
    "retry_attempts": 3,
}
DEFAULT_STORAGE = {"cache_dir": "./cache", "max_cached_results": 10000, "max_cache_age_secs": 86400}
DEFAULT_SELF_UPGRADE = {
    "enabled": False,
    "github_repo_url": "https://github.com/smotra-monitoring/agent",
    "check_interval_secs": 3600,
}


@dataclass
class Mesh:
    """Section A: agent ``probe`` holds ``probes`` (monitor of ``mesh``), whose target is ``web``."""

    agent: Agent
    probes: Tag
    web: Tag
    topology: Topology
    web_1: Endpoint
    web_2: Endpoint


def tag(section, name: str, scope: str = "global") -> Tag:
    return TagFactory(section=section, name=name, scope=scope)


def link(topology, tag: Tag, role: str) -> None:
    TopologyMemberFactory(topology=topology, tag=tag, role=role)


def endpoint_ids(agent) -> list:
    return [endpoint.pk for endpoint in monitored_endpoints(agent)]


def document_endpoints(agent) -> dict:
    """The document's endpoints by address."""
    return {entry["address"]: entry for entry in configuration_render(agent)["endpoints"]}


@pytest.fixture
def mesh(section_a) -> Mesh:
    probes = tag(section_a, "probes", "agent")
    web = tag(section_a, "web", "endpoint")
    topology = TopologyFactory(section=section_a, name="mesh")
    link(topology, probes, "monitor")
    link(topology, web, "target")
    agent = AgentFactory(section=section_a, name="probe", tags=[probes])
    web_1 = EndpointFactory(section=section_a, address="192.0.2.1", port=443, tags=[web])
    web_2 = EndpointFactory(section=section_a, address="web.example.net", tags=[web])
    return Mesh(agent, probes, web, topology, web_1, web_2)


# ---------------------------------------------------------------------------------------------
# Which endpoints


def test_it_resolves_the_targets_of_the_agents_topologies(mesh, section_a):
    EndpointFactory(section=section_a, address="untagged.example.net")
    EndpointFactory(section=section_a, address="other-tag.example.net", tags=[tag(section_a, "db")])

    assert endpoint_ids(mesh.agent) == [mesh.web_1.pk, mesh.web_2.pk]


def test_it_leaves_out_disabled_endpoints(mesh, section_a):
    EndpointFactory(section=section_a, address="192.0.2.99", enabled=False, tags=[mesh.web])

    assert endpoint_ids(mesh.agent) == [mesh.web_1.pk, mesh.web_2.pk]


def test_it_leaves_out_endpoints_reached_only_through_a_disabled_topology(mesh, section_a):
    db = tag(section_a, "db", "endpoint")
    database = EndpointFactory(section=section_a, address="db.example.net", tags=[db])
    paused = TopologyFactory(section=section_a, name="paused", enabled=False)
    link(paused, mesh.probes, "monitor")
    link(paused, db, "target")
    assert database.pk not in endpoint_ids(mesh.agent)

    Topology.objects.filter(pk=mesh.topology.pk).update(enabled=False)
    assert endpoint_ids(mesh.agent) == []

    Topology.objects.filter(pk=paused.pk).update(enabled=True)
    assert endpoint_ids(mesh.agent) == [database.pk]


def test_it_needs_monitor_and_target_in_the_same_topology(mesh, section_a):
    db = tag(section_a, "db", "endpoint")
    EndpointFactory(section=section_a, address="db.example.net", tags=[db])
    elsewhere = TopologyFactory(section=section_a, name="elsewhere")
    link(elsewhere, tag(section_a, "other-probes", "agent"), "monitor")
    link(elsewhere, db, "target")

    assert endpoint_ids(mesh.agent) == [mesh.web_1.pk, mesh.web_2.pk]


def test_it_leaves_out_endpoints_of_another_section_even_with_the_target_tag(mesh, section_a, section_b):
    sibling = SectionFactory(tenant=section_a.tenant)
    # Services never link a tag to an endpoint of another section; the query must not rely on it.
    EndpointFactory(section=sibling, address="sibling.example.net", tags=[mesh.web])
    foreign_web = tag(section_b, "web", "endpoint")
    EndpointFactory(section=section_b, address="foreign.example.net", tags=[foreign_web])
    foreign_mesh = TopologyFactory(section=section_b, name="mesh")
    link(foreign_mesh, tag(section_b, "probes", "agent"), "monitor")
    link(foreign_mesh, foreign_web, "target")

    assert endpoint_ids(mesh.agent) == [mesh.web_1.pk, mesh.web_2.pk]


def test_it_leaves_out_the_agents_own_endpoint_even_when_tagged_as_target(mesh, section_a):
    own = EndpointFactory(section=section_a, address="192.0.2.50", tags=[mesh.web])
    Agent.objects.filter(pk=mesh.agent.pk).update(self_endpoint=own)
    mesh.agent.refresh_from_db()

    assert own.pk not in endpoint_ids(mesh.agent)
    assert endpoint_ids(mesh.agent) == [mesh.web_1.pk, mesh.web_2.pk]


def test_it_needs_the_agent_to_hold_the_monitor_tag(mesh, section_a):
    bystander = AgentFactory(section=section_a, name="bystander")
    target_holder = AgentFactory(section=section_a, name="target-holder", tags=[mesh.web])
    unrelated = AgentFactory(section=section_a, name="unrelated", tags=[tag(section_a, "elsewhere", "agent")])

    for agent in (bystander, target_holder, unrelated):
        assert endpoint_ids(agent) == [], agent.name
        assert configuration_render(agent)["endpoints"] == []


def test_a_tag_with_both_roles_makes_a_mesh_of_its_holders(section_a):
    both = tag(section_a, "mesh-members", "global")
    topology = TopologyFactory(section=section_a, name="full-mesh")
    link(topology, both, "monitor")
    link(topology, both, "target")
    agents = []
    for number in range(3):
        own = EndpointFactory(section=section_a, address=f"192.0.2.{number + 1}", tags=[both])
        agents.append(AgentFactory(section=section_a, name=f"peer-{number}", self_endpoint=own, tags=[both]))

    for agent in agents:
        others = {peer.self_endpoint_id for peer in agents if peer is not agent}
        assert set(endpoint_ids(agent)) == others


def test_it_lists_an_endpoint_once_however_many_ways_it_is_reached(mesh, section_a):
    api = tag(section_a, "api", "endpoint")
    mesh.web_1.tags.add(api)
    second = TopologyFactory(section=section_a, name="second")
    link(second, mesh.probes, "monitor")
    link(second, api, "target")
    link(second, mesh.web, "target")

    assert endpoint_ids(mesh.agent) == [mesh.web_1.pk, mesh.web_2.pk]
    assert len(configuration_render(mesh.agent)["endpoints"]) == 2


# ---------------------------------------------------------------------------------------------
# The document


def test_it_renders_the_whole_document(mesh):
    document = configuration_render(mesh.agent)

    assert document == {
        "version": mesh.agent.document_version,
        "agent_id": str(mesh.agent.pk),
        "agent_name": "probe",
        "tags": ["probes"],
        "monitoring": DEFAULT_MONITORING,
        "server": DEFAULT_SERVER,
        "storage": DEFAULT_STORAGE,
        "self_upgrade": DEFAULT_SELF_UPGRADE,
        "endpoints": [
            {"id": str(mesh.web_1.pk), "address": "192.0.2.1", "port": 443, "enabled": True, "tags": ["web"]},
            {"id": str(mesh.web_2.pk), "address": "web.example.net", "enabled": True, "tags": ["web"]},
        ],
    }
    assert json.loads(json.dumps(document)) == document


def test_it_omits_the_port_when_unset(mesh):
    endpoints = document_endpoints(mesh.agent)

    assert endpoints["192.0.2.1"]["port"] == 443
    assert "port" not in endpoints["web.example.net"]


def test_its_top_level_tags_are_the_agent_and_global_scoped_ones(mesh, section_a):
    mesh.agent.tags.add(
        tag(section_a, "everywhere", "global"),
        tag(section_a, "endpoint-only", "endpoint"),
        tag(section_a, "another-agent-tag", "agent"),
    )

    assert configuration_render(mesh.agent)["tags"] == ["another-agent-tag", "everywhere", "probes"]


def test_its_endpoint_tags_are_the_endpoint_and_global_scoped_ones(mesh, section_a):
    mesh.web_1.tags.add(
        tag(section_a, "everywhere", "global"),
        tag(section_a, "agent-only", "agent"),
        tag(section_a, "https", "endpoint"),
    )

    assert document_endpoints(mesh.agent)["192.0.2.1"]["tags"] == ["everywhere", "https", "web"]


def test_its_arrays_are_never_null(section_a):
    lonely = AgentFactory(section=section_a, name="lonely")
    # Reached through an agent-scoped target tag only: the endpoint shows no tags at all.
    hidden = tag(section_a, "hidden", "agent")
    topology = TopologyFactory(section=section_a, name="odd")
    link(topology, hidden, "monitor")
    link(topology, hidden, "target")
    holder = AgentFactory(section=section_a, name="holder", tags=[hidden])
    EndpointFactory(section=section_a, address="198.51.100.1", tags=[hidden])

    assert configuration_render(lonely)["tags"] == []
    assert configuration_render(lonely)["endpoints"] == []
    endpoint = configuration_render(holder)["endpoints"][0]
    assert endpoint["tags"] == []
    assert configuration_render(holder)["tags"] == ["hidden"]


def test_it_applies_the_agents_overrides(mesh):
    Agent.objects.filter(pk=mesh.agent.pk).update(
        monitoring_overrides={"interval_secs": 15, "traceroute_on_failure": True},
        server_overrides={"url": "https://monitor.example.net/v1", "heartbeat_interval_secs": 60},
        storage_overrides={"cache_dir": "/var/cache/smotra"},
    )
    mesh.agent.refresh_from_db()

    document = configuration_render(mesh.agent)

    assert document["monitoring"] == DEFAULT_MONITORING | {"interval_secs": 15, "traceroute_on_failure": True}
    assert document["server"] == DEFAULT_SERVER | {
        "url": "https://monitor.example.net/v1",
        "heartbeat_interval_secs": 60,
    }
    assert document["storage"] == DEFAULT_STORAGE | {"cache_dir": "/var/cache/smotra"}
    assert document["self_upgrade"] == DEFAULT_SELF_UPGRADE


def test_it_never_echoes_an_api_key_even_when_one_was_stored_in_the_overrides(mesh):
    # Only a direct database write can put it there (the services refuse it); it must still not leak.
    Agent.objects.filter(pk=mesh.agent.pk).update(
        server_overrides={"api_key": "smk_secret", "url": "https://x.example.net"},
        monitoring_overrides={"api_key": "smk_secret", "unknown": 1},
    )
    mesh.agent.refresh_from_db()

    document = configuration_render(mesh.agent)

    assert document["server"]["api_key"] is None
    assert document["server"]["url"] == "https://x.example.net"
    assert document["monitoring"] == DEFAULT_MONITORING
    assert "smk_secret" not in json.dumps(document)
