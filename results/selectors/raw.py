"""``/result/metrics``: raw results for export and drill-down, keyset-paginated (never OFFSET).

Ordered by (timestamp, id); the cursor is the last row's pair, opaque to clients (base64 of JSON),
so every page is one indexed range read however deep it is."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Q

from results.models import CheckResult
from smotra.errors import Invalid


@dataclass(frozen=True)
class RawQuery:
    start: datetime
    end: datetime
    agent_ids: tuple = ()
    endpoint_ids: tuple = ()
    metric_types: tuple = ()
    success: bool | None = None


def cursor_encode(result: CheckResult) -> str:
    raw = json.dumps([result.checked_at.isoformat(), str(result.pk)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        moment, result_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(moment, str) or not isinstance(result_id, str):
            raise ValueError(cursor)
        moment = datetime.fromisoformat(moment)
        if moment.tzinfo is None:  # ours always carry one; a naive time would be read in no zone
            raise ValueError(cursor)
        return moment.astimezone(UTC), uuid.UUID(result_id)
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise Invalid("cursor is not one this API handed out.", field="cursor") from None


def raw_results(user, query: RawQuery, *, after: str | None = None):
    """The user's results in the window, ordered by (timestamp, id), after the cursor if given."""
    results = CheckResult.objects.visible_to(user).filter(checked_at__gte=query.start, checked_at__lt=query.end)
    if query.agent_ids:
        results = results.filter(agent_id__in=query.agent_ids)
    if query.endpoint_ids:
        results = results.filter(endpoint_id__in=query.endpoint_ids)
    if query.metric_types:
        results = results.filter(check_type__in=query.metric_types)
    if query.success is not None:
        results = results.filter(success=query.success)
    if after:
        moment, result_id = cursor_decode(after)
        # The plain bound first, so the (checked_at, id) index range starts at the cursor.
        results = results.filter(checked_at__gte=moment).filter(
            Q(checked_at__gt=moment) | Q(checked_at=moment, pk__gt=result_id)
        )
    return results.order_by("checked_at", "id")


def page_of(results, size: int) -> tuple[list[CheckResult], str | None]:
    """One page and the cursor of the next (None on the last page)."""
    rows = list(results[: size + 1])
    if len(rows) <= size:
        return rows, None
    return rows[:size], cursor_encode(rows[size - 1])


# The result as the agent sent it: its columns put back beside the details kept as they came.
_COLUMNS_BACK = {
    "ping": lambda r: {"resolved_ip": r.resolved_ip or None},
    "tcpconnect": lambda r: {
        "resolved_ip": r.resolved_ip or None,
        "connected": r.success,
        "connect_time_ms": r.latency_ms,
    },
    "udpconnect": lambda r: {
        "resolved_ip": r.resolved_ip or None,
        "probe_successful": r.success,
        "response_time_ms": r.latency_ms,
    },
    "httpget": lambda r: {"status_code": r.status_code, "success": r.success, "response_time_ms": r.latency_ms},
    "traceroute": lambda r: {"target_reached": r.success},
    "plugin": lambda r: {"success": r.success, "response_time_ms": r.latency_ms},
}


def result_as_sent(result: CheckResult) -> dict:
    return {**_COLUMNS_BACK[result.check_type](result), **(result.details or {})}


def error_message(result: CheckResult) -> str | None:
    """The agent's error text: ``error_details.errors`` joined, or an older agent's ``error``."""
    details = result.details or {}
    errors = (
        (details.get("error_details") or {}).get("errors") if isinstance(details.get("error_details"), dict) else None
    )
    if errors:
        return "; ".join(errors)
    return details.get("error") or None


def packet_loss_percent(result: CheckResult) -> float | None:
    if result.check_type != "ping" or not result.packets_sent:
        return None
    return round((result.packets_sent - (result.packets_received or 0)) / result.packets_sent * 100, 2)
