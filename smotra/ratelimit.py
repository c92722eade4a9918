"""Fixed-window rate limiting in the database, so every gunicorn worker shares the same counts.

One statement per hit: an upsert that increments and returns the count (SQLite >= 3.35, PostgreSQL)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.utils import timezone
from uuid6 import uuid7

from smotra.models import RateLimitCounter


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int
    retry_after: int  # seconds until the window ends


def _window(now: datetime, seconds: int) -> datetime:
    start = math.floor(now.timestamp() / seconds) * seconds
    return datetime.fromtimestamp(start, UTC)


def ratelimit_hit(key: str, *, limit: int, window_seconds: int = 60, now: datetime | None = None) -> Verdict:
    """Count one hit for ``key`` in the current window; allowed while the count stays within ``limit``."""
    now = now or timezone.now()
    window_start = _window(now, window_seconds)
    table = RateLimitCounter._meta.db_table
    id_field = RateLimitCounter._meta.get_field("id")
    start_field = RateLimitCounter._meta.get_field("window_start")
    params = [
        id_field.get_db_prep_value(uuid7(), connection),
        key,
        start_field.get_db_prep_value(window_start, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (id, key, window_start, count) VALUES (%s, %s, %s, 1) "  # noqa: S608 - table name is ours
            f"ON CONFLICT (key, window_start) DO UPDATE SET count = {table}.count + 1 RETURNING count",
            params,
        )
        count = cursor.fetchone()[0]
    retry_after = max(1, math.ceil((window_start + timedelta(seconds=window_seconds) - now).total_seconds()))
    return Verdict(allowed=count <= limit, count=count, retry_after=retry_after)


def ratelimit_prune(*, older_than: timedelta = timedelta(hours=1)) -> int:
    """Delete counters of windows that ended long ago."""
    deleted, _ = RateLimitCounter.objects.filter(window_start__lt=timezone.now() - older_than).delete()
    return deleted
