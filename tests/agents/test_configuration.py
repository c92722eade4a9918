"""``GET {prefix}/agent/{id}/configuration`` (contract §6.1): ETag, 304, the per-version cache."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Agent, AgentConfigCache
from agents.services import configuration
from agents.services.management import agent_update
from endpoints import services
from tenants.services import Actor
from tests.factories import EndpointFactory, TagFactory, TopologyFactory, TopologyMemberFactory
from tests.results import KEY, OTHER_KEY, agent_with_key, key_header, random_id

pytestmark = pytest.mark.django_db

CLI = Actor.cli()


@pytest.fixture
def web(section_a):
    return TagFactory(section=section_a, name="web", scope="endpoint")


@pytest.fixture
def topology(section_a, web):
    topology = TopologyFactory(section=section_a, name="mesh")
    probes = TagFactory(section=section_a, name="probes", scope="agent")
    TopologyMemberFactory(topology=topology, tag=probes, role="monitor")
    TopologyMemberFactory(topology=topology, tag=web, role="target")
    return topology


@pytest.fixture
def agent(section_a, topology, web):
    EndpointFactory(section=section_a, address="192.0.2.1", port=443, tags=[web])
    probes = topology.members.get(role="monitor").tag
    return agent_with_key(section_a, name="probe", tags=[probes])


def url(agent, prefix: str = "/v1") -> str:
    return f"{prefix}/agent/{agent.pk}/configuration"


def fetch(client, agent, key: str = KEY, **headers):
    return client.get(url(agent), **key_header(key), **headers)


def version_of(agent) -> int:
    return Agent.objects.with_document_version().get(pk=agent.pk).document_version


def cached(agent) -> AgentConfigCache:
    return AgentConfigCache.objects.get(agent_id=agent.pk)


# ---------------------------------------------------------------------------------------------
# The answer and its ETag


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_it_answers_the_document_with_the_version_as_etag(client, agent, prefix):
    response = client.get(url(agent, prefix), **key_header())

    assert response.status_code == 200
    body = response.json()
    assert body["agent_id"] == str(agent.pk)
    assert body["version"] == version_of(agent)
    assert response["ETag"] == f'"{body["version"]}"'
    assert [entry["address"] for entry in body["endpoints"]] == ["192.0.2.1"]
    assert body["server"]["api_key"] is None


@pytest.mark.parametrize(
    "if_none_match",
    ['"{v}"', 'W/"{v}"', '"99999", W/"{v}"', '"0" , "{v}"', "*"],
    ids=["strong", "weak", "list_with_weak", "list_with_spaces", "star"],
)
def test_it_answers_304_with_an_empty_body_for_the_current_version(client, agent, if_none_match):
    header = if_none_match.format(v=version_of(agent))

    response = fetch(client, agent, HTTP_IF_NONE_MATCH=header)

    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == f'"{version_of(agent)}"'


@pytest.mark.parametrize("if_none_match", ['"{stale}"', 'W/"{stale}"', '"{stale}", "0"', '"abc"', ""])
def test_it_answers_200_for_a_stale_or_foreign_etag(client, agent, if_none_match):
    services.endpoint_create(actor=CLI, section=agent.section, address="192.0.2.2")
    header = if_none_match.format(stale=version_of(agent) - 1)

    response = fetch(client, agent, HTTP_IF_NONE_MATCH=header)

    assert response.status_code == 200
    assert response.json()["version"] == version_of(agent)


def test_a_304_costs_only_the_authentication_query(client, agent):
    header = f'"{version_of(agent)}"'

    with CaptureQueriesContext(connection) as queries:
        response = fetch(client, agent, HTTP_IF_NONE_MATCH=header)

    assert response.status_code == 304
    assert len(queries) == 1, [query["sql"] for query in queries]


# ---------------------------------------------------------------------------------------------
# The cache


def test_an_unchanged_version_is_served_from_the_cache_without_resolving_topologies(client, agent):
    first = fetch(client, agent)
    assert cached(agent).version == first.json()["version"]

    with CaptureQueriesContext(connection) as queries:
        second = fetch(client, agent)

    assert second.status_code == 200
    assert second.json() == first.json()
    statements = [query["sql"] for query in queries]
    assert len(statements) == 1, statements  # the key lookup: the worker keeps the document
    assert not any("topologymember" in sql.lower() or "endpoints_endpoint" in sql.lower() for sql in statements)


def test_another_worker_serves_what_the_cache_holds_for_the_current_version(client, agent):
    """Proof that a worker without the document reads the cache table: a doctored row at the same
    version is served (a new worker process starts with nothing kept)."""
    fetch(client, agent)
    doctored = {**cached(agent).document, "agent_name": "from-the-cache"}
    AgentConfigCache.objects.filter(agent_id=agent.pk).update(document=doctored)
    assert fetch(client, agent).json()["agent_name"] == "probe"  # this worker kept its own

    configuration.documents_forget()

    assert fetch(client, agent).json()["agent_name"] == "from-the-cache"


def test_a_worker_keeps_documents_up_to_its_byte_budget(client, agent, section_a, topology, monkeypatch):
    """Past DOCUMENT_BYTES_KEPT the least recently fetched document is dropped: its next fetch
    reads the cache table again (and is answered the same)."""
    probes = topology.members.get(role="monitor").tag
    keys = [f"smk_test-neighbour-{n}-{'0' * 40}" for n in range(2)]
    neighbours = [
        agent_with_key(section_a, key=key, name=f"neighbour-{n}", tags=[probes]) for n, key in enumerate(keys)
    ]
    first = fetch(client, agent)
    monkeypatch.setattr(configuration, "DOCUMENT_BYTES_KEPT", len(first.content) * 5 // 2)
    configuration.documents_forget()
    for neighbour, key in [(agent, KEY), *zip(neighbours, keys, strict=True)]:
        fetch(client, neighbour, key=key)  # three documents: the first one no longer fits

    with CaptureQueriesContext(connection) as queries:
        again = fetch(client, agent)

    assert again.json() == first.json()  # jsonb keeps its own key order
    assert len(queries) == 2, [query["sql"] for query in queries]  # the key lookup, the cache table
    with CaptureQueriesContext(connection) as queries:
        fetch(client, agent)
    assert len(queries) == 1


def test_it_keeps_one_cache_row_per_agent(client, agent, section_a, topology):
    probes = topology.members.get(role="monitor").tag
    neighbour = agent_with_key(section_a, key=OTHER_KEY, name="neighbour", tags=[probes])

    fetch(client, agent)
    fetch(client, neighbour, key=OTHER_KEY)
    services.endpoint_create(actor=CLI, section=section_a, address="192.0.2.3")
    fetch(client, agent)
    fetch(client, neighbour, key=OTHER_KEY)

    rows = {row.agent_id: row for row in AgentConfigCache.objects.all()}
    assert set(rows) == {agent.pk, neighbour.pk}
    assert rows[agent.pk].document["agent_name"] == "probe"
    assert rows[neighbour.pk].document["agent_name"] == "neighbour"
    assert rows[agent.pk].version == version_of(agent)


def bump_by_endpoint(agent, web, topology):
    services.endpoint_create(actor=CLI, section=agent.section, address="198.51.100.7", tag_ids=[web.pk])
    return lambda document: "198.51.100.7" in [entry["address"] for entry in document["endpoints"]]


def bump_by_tag_rename(agent, web, topology):
    services.tag_update(actor=CLI, tag=web, name="websites")
    return lambda document: document["endpoints"][0]["tags"] == ["websites"]


def bump_by_member_add(agent, web, topology):
    db = TagFactory(section=agent.section, name="db", scope="endpoint")
    EndpointFactory(section=agent.section, address="db.example.net", tags=[db])
    services.topology_member_add(actor=CLI, topology=topology, tag=db, role="target")
    return lambda document: "db.example.net" in [entry["address"] for entry in document["endpoints"]]


def bump_by_topology_disable(agent, web, topology):
    services.topology_update(actor=CLI, topology=topology, enabled=False)
    return lambda document: document["endpoints"] == []


def bump_by_agent_rename(agent, web, topology):
    agent_update(actor=CLI, agent=Agent.objects.get(pk=agent.pk), name="renamed")
    return lambda document: document["agent_name"] == "renamed"


def bump_by_overrides(agent, web, topology):
    agent_update(actor=CLI, agent=Agent.objects.get(pk=agent.pk), monitoring_overrides={"interval_secs": 30})
    return lambda document: document["monitoring"]["interval_secs"] == 30


@pytest.mark.parametrize(
    "change",
    [
        bump_by_endpoint,
        bump_by_tag_rename,
        bump_by_member_add,
        bump_by_topology_disable,
        bump_by_agent_rename,
        bump_by_overrides,
    ],
)
def test_a_version_bump_reaches_the_document_and_replaces_the_cached_one(client, agent, web, topology, change):
    before = fetch(client, agent)
    old_version = before.json()["version"]

    shows_change = change(agent, web, topology)
    assert not shows_change(before.json())
    after = fetch(client, agent, HTTP_IF_NONE_MATCH=f'"{old_version}"')

    assert after.status_code == 200
    document = after.json()
    assert document["version"] > old_version
    assert document["version"] == version_of(agent)
    assert after["ETag"] == f'"{document["version"]}"'
    assert shows_change(document)
    row = cached(agent)
    assert row.version == document["version"]
    assert row.document == document
    assert fetch(client, agent, HTTP_IF_NONE_MATCH=after["ETag"]).status_code == 304


def test_a_stale_cache_row_is_never_served(client, agent):
    fetch(client, agent)
    stale = {**cached(agent).document, "agent_name": "stale"}
    AgentConfigCache.objects.filter(agent_id=agent.pk).update(document=stale)
    Agent.objects.filter(pk=agent.pk).update(config_version=F("config_version") + 1)

    response = fetch(client, agent)

    assert response.json()["agent_name"] == "probe"
    assert cached(agent).version == version_of(agent)


# ---------------------------------------------------------------------------------------------
# Who may fetch


def test_it_answers_401_without_a_key(client, agent, assert_error):
    body = assert_error(client.get(url(agent)), 401, "unauthorized")

    assert body["message"] == "No authentication provided"
    assert not AgentConfigCache.objects.exists()


@pytest.mark.parametrize("key", ["smk_wrong", "", "x" * 300])
def test_it_answers_401_for_a_wrong_key(client, agent, assert_error, key):
    assert_error(fetch(client, agent, key=key), 401, "unauthorized")


def test_it_answers_401_for_a_revoked_agent(client, agent, assert_error):
    Agent.objects.filter(pk=agent.pk).update(revoked_at=timezone.now())

    assert_error(fetch(client, agent), 401, "unauthorized")


def test_it_answers_403_on_another_agents_path(client, agent, section_b, assert_error):
    stranger = agent_with_key(section_b, key=OTHER_KEY, name="stranger")

    assert_error(fetch(client, agent, key=OTHER_KEY), 403, "forbidden")
    assert_error(client.get(f"/v1/agent/{random_id()}/configuration", **key_header()), 403, "forbidden")
    assert not AgentConfigCache.objects.filter(agent_id__in=[agent.pk, stranger.pk]).exists()


def test_it_canonicalises_the_path_id(client, agent):
    response = client.get(f"/v1/agent/{str(agent.pk).upper()}/configuration", **key_header())

    assert response.status_code == 200
    assert response.json()["agent_id"] == str(agent.pk)
