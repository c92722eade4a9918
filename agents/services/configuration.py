"""The agent's configuration document (contract §6.1): topology resolution, defaults, caching."""

from __future__ import annotations

import threading
from collections import OrderedDict

from django.db.models import Prefetch

from agents.models import Agent, AgentConfigCache
from agents.overrides import effective
from endpoints.models import Endpoint, MemberRole, Tag, TagScope, TopologyMember
from smotra.api.renderers import json_bytes

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


def configuration_for(agent: Agent) -> bytes:
    """The document at the agent's current version, as the JSON answered: from this process's
    memory when it has it at this version, else from the cache table when it was rendered at this
    version (one indexed read), else rendered and stored for every worker to reuse."""
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
    rendered = json_bytes(document)
    _keep(key, version, rendered)
    return rendered


# This process's documents: (agent id, key hash) -> (version, the JSON bytes), the least recently
# used dropped past DOCUMENT_BYTES_KEPT in all. Every agent request reads the agent's version with
# its key (the agent's counter plus its section's, one join), and every change to what a document
# holds raises it (the rule the cache table relies on too): a kept document is checked against the
# database at no cost, and a change is seen at once by every worker of every instance. The key
# hash is in the key so that an agent id registered again (a new claim, a new key) never meets an
# old document. Bytes, not dicts: nothing for the garbage collector to walk, nothing to render.
DOCUMENT_BYTES_KEPT = 32 * 2**20
_documents: OrderedDict[tuple, tuple[int, bytes]] = OrderedDict()
_kept_bytes = 0
_lock = threading.Lock()


def _keep(key: tuple, version: int, rendered: bytes) -> None:
    global _kept_bytes
    with _lock:
        old = _documents.pop(key, None)
        _kept_bytes -= len(old[1]) if old else 0
        if len(rendered) > DOCUMENT_BYTES_KEPT // 2:
            return  # one huge document would push out everyone else's
        _documents[key] = (version, rendered)
        _kept_bytes += len(rendered)
        while _kept_bytes > DOCUMENT_BYTES_KEPT:
            _old_key, (_version, dropped) = _documents.popitem(last=False)
            _kept_bytes -= len(dropped)


def documents_forget() -> None:
    """Drop this process's documents (what a new worker starts with)."""
    global _kept_bytes
    with _lock:
        _documents.clear()
        _kept_bytes = 0
