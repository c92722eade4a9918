"""Seams where a higher app adds to what a lower one answers, without the lower app importing it
(apps are layered: tenants < endpoints < agents < results < alerting)."""

from __future__ import annotations

from collections.abc import Callable

# (user, section_id or None) -> open incidents the user may see; set by alerting when installed.
_open_alerts: Callable[[object, object], int] | None = None


def register_open_alerts(counter: Callable[[object, object], int]) -> None:
    global _open_alerts
    _open_alerts = counter


def open_alerts(user, section_id=None) -> int:
    """``/result/summary``'s active_alerts: 0 when no alerting app counts them."""
    return _open_alerts(user, section_id) if _open_alerts is not None else 0


# user -> the open incidents the user may see, as dicts for the overview (severity, severity_label,
# title, since, status, status_label, in_maintenance, url); set by alerting when installed.
_overview_incidents: Callable[[object], list] | None = None


def register_overview_incidents(lister: Callable[[object], list]) -> None:
    global _overview_incidents
    _overview_incidents = lister


def overview_incidents(user) -> list:
    """The overview's open incidents, most severe first: empty when no alerting app lists them."""
    return _overview_incidents(user) if _overview_incidents is not None else []
