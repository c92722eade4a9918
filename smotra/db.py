"""Database helpers shared by services."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import IntegrityError, transaction

from smotra.errors import Conflict


@contextmanager
def unique_or_conflict(message: str, field: str) -> Iterator[None]:
    """Run the block in a savepoint; a unique-constraint violation becomes a 409 naming the field.

    The database decides (no check-then-insert race); the message is the one the caller knows."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError:
        raise Conflict(message, code="already_exists", field=field) from None


def save_changes(obj, changes: dict, *, conflict: str, field: str = "name") -> None:
    """Set the changed attributes and save; a duplicate ``field`` is a 409 saying ``conflict``."""
    for name, value in changes.items():
        setattr(obj, name, value)
    with unique_or_conflict(conflict, field):
        obj.save()


def delete_in_chunks(queryset, chunk: int) -> int:
    """Delete the queryset's rows ``chunk`` primary keys at a time, each statement its own short
    transaction (so writers carry on beside it); returns how many went."""
    total = 0
    while True:
        keys = list(queryset.values_list("pk", flat=True)[:chunk])
        if not keys:
            return total
        deleted, _ = queryset.model.objects.filter(pk__in=keys).delete()
        total += deleted
