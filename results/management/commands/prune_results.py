"""``manage.py prune_results [--older-than 30d] [--chunk 5000]``: enforce the retention settings.

Deletes results, vitals and unknown-endpoint records (by their last sighting) older than
``results.retention``, minute rollups older than ``results.minute_rollup_retention`` and hourly and
daily ones older than ``results.hour_rollup_retention``, in bounded chunks, each its own short transaction, so
ingestion carries on beside it. On PostgreSQL results go a day partition at a time where they can
(results.partitions), and the partitions of the coming days are created first. Schedule it daily
(cron, systemd timer, CronJob)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from results.models import DayRollup, Heartbeat, HourRollup, MinuteRollup, RollupSeries, UnknownEndpoint
from results.partitions import partitions_ensure, results_prune
from smotra.config import ConfigError, parse_age
from smotra.db import delete_in_chunks


def delete_buckets_in_chunks(model, cutoff, chunk: int) -> int:
    """Delete rollup rows whose bucket is before ``cutoff``: series by series, oldest first, ``chunk``
    rows per statement, each found through the (series, bucket) key (a bucket-only scan would read
    the whole table per chunk)."""
    total = 0
    for series_id in list(RollupSeries.objects.order_by("pk").values_list("pk", flat=True)):
        old = model.objects.filter(series_id=series_id, bucket__lt=cutoff).order_by("bucket")
        total += delete_in_chunks(old, chunk)
    return total


class Command(BaseCommand):
    help = (
        "Delete check results, heartbeats and unknown endpoints not seen since results.retention "
        "(default 30 days), and rollups past their own retention (14 days minute, 400 days hour and day), in chunks."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", help="Override the retention: Go duration or Nd (e.g. 30d).")
        parser.add_argument("--chunk", type=int, default=5000, help="Rows per delete statement (default 5000).")

    def handle(self, *args, older_than=None, chunk=5000, **options):
        if chunk < 1:
            raise CommandError("--chunk must be at least 1.")
        cutoff = timezone.now() - self.retention(older_than)
        created = partitions_ensure()
        pruned = results_prune(cutoff, chunk)
        heartbeats = delete_in_chunks(Heartbeat.objects.filter(timestamp__lt=cutoff), chunk)
        unknown = delete_in_chunks(UnknownEndpoint.objects.filter(last_seen_at__lt=cutoff), chunk)
        now, config = timezone.now(), settings.SMOTRA.results
        minutes = delete_buckets_in_chunks(MinuteRollup, now - timedelta(seconds=config.minute_rollup_retention), chunk)
        hour_cutoff = now - timedelta(seconds=config.hour_rollup_retention)
        hours = delete_buckets_in_chunks(HourRollup, hour_cutoff, chunk)
        hours += delete_buckets_in_chunks(DayRollup, hour_cutoff, chunk)
        self.stdout.write(
            f"Deleted {pruned.results} result(s), {heartbeats} heartbeat(s) and {unknown} unknown endpoint(s) "
            f"older than {cutoff.isoformat()}, {minutes} minute and {hours} hour and day rollup(s)."
        )
        if pruned.partitions or pruned.kept or created:
            self.stdout.write(
                f"Result partitions: {pruned.partitions} dropped, {pruned.kept} expired but kept, "
                f"{len(created)} created ahead."
            )

    @staticmethod
    def retention(text: str | None) -> timedelta:
        if text is None:
            return timedelta(seconds=settings.SMOTRA.results.retention)
        try:
            return timedelta(seconds=parse_age("--older-than", text))
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
