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
