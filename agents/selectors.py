"""Reads of agents for people: filtered lists."""

from __future__ import annotations

import uuid

from django.db.models import Q


def agents_filter(queryset, *, section=None, status=None, tag=None, search=None):
    """Apply the agent list's filters (contract §7) to an already tenant-scoped queryset."""
    if section:
        queryset = queryset.filter(section_id=section)
    if status:
        queryset = queryset.with_status(status)
    if tag:
        queryset = queryset.filter(_tag_match(tag)).distinct()
    if search:
        queryset = queryset.filter(_search_match(search))
    return queryset


def _as_uuid(value: str):
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _tag_match(tag: str) -> Q:
    tag_id = _as_uuid(tag)
    return Q(tags__pk=tag_id) if tag_id else Q(tags__name=tag)


def _search_match(text: str) -> Q:
    match = Q(name__icontains=text) | Q(hostname__icontains=text)
    agent_id = _as_uuid(text)
    return match | Q(pk=agent_id) if agent_id else match
