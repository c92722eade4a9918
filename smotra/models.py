"""Abstract bases shared by every app's models."""

from __future__ import annotations

from django.db import models
from uuid6 import uuid7


class UUIDv7Model(models.Model):
    """Primary key is a UUIDv7: time-ordered, so inserts append to the index instead of scattering."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)

    class Meta:
        abstract = True


class TimestampedModel(UUIDv7Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class RateLimitCounter(UUIDv7Model):
    """Requests counted per key (e.g. ``register:<ip>``) and fixed window, shared by all workers."""

    key = models.CharField(max_length=200)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window_start"], name="ratelimit_key_window")]
        indexes = [models.Index(fields=["window_start"], name="ratelimit_window")]

    def __str__(self) -> str:
        return f"{self.key} @ {self.window_start:%H:%M}: {self.count}"
