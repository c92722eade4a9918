"""Fixtures of the alerting tests."""

from __future__ import annotations

import pytest

from alerting.models import (
    AlertRule,
    Channel,
    DeliveryAttempt,
    Incident,
    IncidentEvent,
    MaintenanceWindow,
    Notification,
)

ALERTING_TABLES = [
    AlertRule,
    AlertRule.channels.through,
    Channel,
    MaintenanceWindow,
    Incident,
    IncidentEvent,
    Notification,
    DeliveryAttempt,
]


@pytest.fixture(name="db_state")
def alerting_db_state(db_state):
    """conftest's snapshot plus every alerting table: a refused request leaves those unchanged too."""

    def snapshot() -> dict:
        rows = {model.__name__: sorted(map(repr, model.objects.values())) for model in ALERTING_TABLES}
        return {**db_state(), **rows}

    return snapshot
