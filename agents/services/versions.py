"""Configuration versions: the one place they change.

Services (not database triggers) bump them: every write that can change an agent's configuration
document goes through a service, the admin included, and a service knows exactly which section or
agent it touched, so the bump is one UPDATE in the same transaction. Triggers would need two
dialects (SQLite, PostgreSQL) and would also fire for writes that change nothing visible."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import F, Q

from agents.models import Agent
from tenants.models import Section


def config_versions_bump(*, section_ids: Iterable = (), agent_ids: Iterable = ()) -> int:
    """Increase by one the config_version of every agent in the sections and of the given agents."""
    section_ids, agent_ids = list(section_ids), list(agent_ids)
    if not section_ids and not agent_ids:
        return 0
    with transaction.atomic(savepoint=False):
        if section_ids:
            # Concurrent bumps of one section (two claims, say) would each lock its agents' rows in
            # scan order, which differs between transactions once updated rows have moved: a deadlock
            # on PostgreSQL. They queue on the section row instead (NO KEY: inserts referencing the
            # section are not blocked).
            sections = Section.objects.filter(pk__in=section_ids).order_by("pk")
            list(sections.select_for_update(no_key=True).values_list("pk", flat=True))
        return Agent.objects.filter(Q(section_id__in=section_ids) | Q(pk__in=agent_ids)).update(
            config_version=F("config_version") + 1
        )
