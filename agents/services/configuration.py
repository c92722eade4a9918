"""The agent's configuration document (contract §6.1): topology resolution, defaults, caching."""

from __future__ import annotations

import threading
from collections import OrderedDict

from django.db.models import Prefetch

from agents.models import Agent, AgentConfigCache
from agents.overrides import effective
from endpoints.models import Endpoint, MemberRole, Tag, TagScope, TopologyMember

AGENT_TAG_SCOPES = (TagScope.AGENT, TagScope.GLOBAL)
ENDPOINT_TAG_SCOPES = (TagScope.ENDPOINT, TagScope.GLOBAL)


def monitored_endpoints(agent: Agent):
    """Enabled endpoints of the agent's section whose tag is a ``target`` of an enabled topology in
    which one of the agent's tags is a ``monitor`` (or all of them, when the section monitors all
    its endpoints); never the agent's own self-endpoint."""
    if agent.section.monitor_all_endpoints:
        endpoints = Endpoint.objects.filter(section_id=agent.section_id, enabled=True)
        return _for_document(endpoints.exclude(pk=agent.self_endpoint_id) if agent.self_endpoint_id else endpoints)
    monitor_topologies = TopologyMember.objects.filter(
        role=MemberRole.MONITOR,
        tag__agents=agent,
        topology__enabled=True,
        topology__section_id=agent.section_id,
    ).values("topology_id")
    target_tags = TopologyMember.objects.filter(role=MemberRole.TARGET, topology_id__in=monitor_topologies).values(
        "tag_id"
    )
    endpoints = Endpoint.objects.filter(section_id=agent.section_id, enabled=True, tags__in=target_tags)
    if agent.self_endpoint_id:
        endpoints = endpoints.exclude(pk=agent.self_endpoint_id)
    return _for_document(endpoints)


def _for_document(endpoints):
    visible_tags = Tag.objects.filter(scope__in=ENDPOINT_TAG_SCOPES).order_by("name")
    return (
        Endpoint.objects.filter(pk__in=endpoints.values("pk"))
        .order_by("address", "port", "id")
        .prefetch_related(Prefetch("tags", queryset=visible_tags, to_attr="document_tags"))
    )


def _endpoint_document(endpoint: Endpoint) -> dict:
    document = {"id": str(endpoint.pk), "address": endpoint.address}
    if endpoint.port is not None:
        document["port"] = endpoint.port
    document["enabled"] = True
    document["tags"] = [tag.name for tag in endpoint.document_tags]
    return document


def configuration_render(agent: Agent) -> dict:
    """Build the document. No secret ever appears: ``server.api_key`` is always null."""
    tags = agent.tags.filter(scope__in=AGENT_TAG_SCOPES).order_by("name").values_list("name", flat=True)
    return {
        "version": agent.document_version,
        "agent_id": str(agent.pk),
        "agent_name": agent.name,
        "tags": list(tags),
        "monitoring": effective("monitoring", agent.monitoring_overrides),
        "server": effective("server", agent.server_overrides),
        "storage": effective("storage", agent.storage_overrides),
        "self_upgrade": dict(SELF_UPGRADE_DEFAULTS),
        "endpoints": [_endpoint_document(endpoint) for endpoint in monitored_endpoints(agent)],
    }


SELF_UPGRADE_DEFAULTS = {
    "enabled": False,
    "github_repo_url": "https://github.com/smotra-monitoring/agent",
    "check_interval_secs": 3600,
}


def configuration_for(agent: Agent) -> dict:
    """The document at the agent's current version: from this process's memory when it has it at
    this version, else from the cache table when it was rendered at this version (one indexed
    read), else rendered and stored for every worker to reuse. The document is shared: callers
    must not change it."""
    key = (agent.pk, agent.api_key_hash)
    version = agent.document_version
    with _lock:
        kept = _documents.get(key)
        if kept is not None and kept[0] == version:
            _documents.move_to_end(key)
            return kept[1]
    cached = AgentConfigCache.objects.filter(agent_id=agent.pk, version=version).first()
    if cached is not None:
        document = cached.document
    else:
        document = configuration_render(agent)
        AgentConfigCache.objects.update_or_create(
            agent_id=agent.pk, defaults={"version": document["version"], "document": document}
        )
    with _lock:
        _documents[key] = (version, document)
        if len(_documents) > DOCUMENTS_KEPT:
            _documents.popitem(last=False)
    return document


# This process's documents: (agent id, key hash) -> (version, document), the least recently used
# dropped past DOCUMENTS_KEPT. Every agent request reads the agent's version with its key (the
# agent's counter plus its section's, one join), and every change to what a document holds raises
# it (the rule the cache table relies on too): a kept document is checked against the database at
# no cost, and a change is seen at once by every worker of every instance. The key hash is in the
# key so that an agent id registered again (a new claim, a new key) never meets an old document.
DOCUMENTS_KEPT = 10_000


def documents_forget() -> None:
    """Drop this process's documents (what a new worker starts with)."""
    with _lock:
        _documents.clear()


_documents: OrderedDict[tuple, tuple[int, dict]] = OrderedDict()
_lock = threading.Lock()
