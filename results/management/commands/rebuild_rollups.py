"""``manage.py rebuild_rollups [--since T] [--endpoint ID]``: recompute rollups from raw results.

For repairs and after importing results: the same code as ingestion adds the raw rows up again, one
agent at a time under the agent's row lock (ingestion takes the same lock), so batches arriving
meanwhile are neither lost nor counted twice. Rows past a rollup's retention are left to
``prune_results``, as for incremental ones, so a rebuild equals what ingestion built."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Min

from agents.models import Agent
from results.models import CheckResult, HourRollup
from results.rollups import DAY, RESOLUTIONS, bucket_start, rollups_add
from smotra.errors import Invalid
from smotra.validation import timestamp

CHUNK = 5000


class Command(BaseCommand):
    help = "Recompute the minute, hour and day rollups from raw results (all, or since a time, or for one endpoint)."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="RFC 3339 time; rebuilt from the start of its UTC day (default: all).")
        parser.add_argument("--endpoint", help="Only this endpoint id.")

    def handle(self, *args, since=None, endpoint=None, **options):
        start, endpoint_id = self.parse_since(since), self.parse_endpoint(endpoint)
        results = CheckResult.objects.all()
        if start is not None:
            results = results.filter(checked_at__gte=start)
        if endpoint_id is not None:
            results = results.filter(endpoint_id=endpoint_id)
        self.refuse_losing_history(results, start, endpoint_id)
        agents = list(results.order_by().values_list("agent_id", flat=True).distinct())
        rows = sum(self.rebuild_agent(agent_id, results, start, endpoint_id) for agent_id in agents)
        self.stdout.write(f"Rebuilt the rollups of {len(agents)} agent(s) from {rows} result(s).")

    @transaction.atomic
    def rebuild_agent(self, agent_id, results, start: datetime | None, endpoint_id) -> int:
        """One agent's rows: deleted and added up again in one transaction, under its row lock."""
        list(Agent.objects.filter(pk=agent_id).select_for_update(no_key=True).values_list("pk", flat=True))
        for model, _width in RESOLUTIONS.values():
            stale = model.objects.filter(series__agent_id=agent_id)
            if start is not None:
                stale = stale.filter(bucket__gte=start)
            if endpoint_id is not None:
                stale = stale.filter(series__endpoint_id=endpoint_id)
            stale.delete()
        count = 0
        for chunk in _chunks(results.filter(agent_id=agent_id).order_by("checked_at", "id").iterator(CHUNK)):
            count += len(chunk)
            rollups_add(chunk)  # ingestion's own code; additive, so chunks of one bucket add up
        return count

    @staticmethod
    def refuse_losing_history(results, start: datetime | None, endpoint_id) -> None:
        """Rollups outlive raw results (400 days against 30): a rebuild reaching back before the
        oldest raw result would delete rollups it cannot recompute. Refuse, naming a safe --since."""
        oldest = results.aggregate(oldest=Min("checked_at"))["oldest"]
        if oldest is None:
            return
        safe = bucket_start(oldest, DAY) + DAY
        if start is not None and start >= safe:
            return
        older = HourRollup.objects.filter(bucket__lt=bucket_start(oldest, DAY))
        if endpoint_id is not None:
            older = older.filter(series__endpoint_id=endpoint_id)
        if older.exists():
            raise CommandError(
                f"Rollups reach back before the oldest raw result ({oldest.isoformat()}); rebuilding from "
                f"there would delete them. Pass --since {safe.isoformat()} (or later)."
            )

    @staticmethod
    def parse_since(text: str | None) -> datetime | None:
        if text is None:
            return None
        try:
            moment = timestamp({"since": text}, "since", "--since", required=True)
        except Invalid as exc:
            raise CommandError(exc.message) from None
        return bucket_start(moment, DAY)

    @staticmethod
    def parse_endpoint(text: str | None):
        if text is None:
            return None
        try:
            return uuid.UUID(text)
        except ValueError:
            raise CommandError(f"--endpoint: {text!r} is not an endpoint id.") from None


def _chunks(iterator, size: int = CHUNK):
    chunk = []
    for item in iterator:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
