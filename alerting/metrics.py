"""Alerting metrics. Labels are bounded sets (channel types, outcomes), never a channel id.

Declared like smotra.metrics: under `serve` prometheus_client runs in multiprocess mode
(PROMETHEUS_MULTIPROC_DIR), so an attempt counted in one process is visible whichever answers /metrics."""

from __future__ import annotations

from prometheus_client import Counter

from alerting.models import ChannelType

OUTCOMES = ("delivered", "failed")

NOTIFICATIONS = Counter(
    "smotra_notifications_total",
    "Notification delivery attempts by channel type and outcome.",
    ["channel_type", "outcome"],
)

# Every series exists from the start at 0, so increase() sees the first failure of a channel type too.
for _type in ChannelType.values:
    for _outcome in OUTCOMES:
        NOTIFICATIONS.labels(channel_type=_type, outcome=_outcome)
