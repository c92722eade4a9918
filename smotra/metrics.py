"""Application metrics. Labels are bounded sets (outcomes, check types), never an agent id.

Under `serve`, prometheus_client runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR), so a counter
incremented in one gunicorn worker is visible whichever worker answers /metrics."""

from __future__ import annotations

from prometheus_client import Counter, disable_created_metrics

# The *_created series double every counter's output and nobody graphs them.
disable_created_metrics()

REGISTRATIONS = Counter("smotra_agent_registrations_total", "Agent self-registrations by outcome.", ["outcome"])
CLAIM_ATTEMPTS = Counter("smotra_agent_claim_attempts_total", "Claim attempts by outcome.", ["outcome"])
KEY_DELIVERIES = Counter("smotra_agent_key_deliveries_total", "API keys delivered to agents (once each).")
KEY_DELIVERY_REFUSALS = Counter(
    "smotra_agent_key_delivery_refusals_total", "Polls of a claimed agent from another address than it registered from."
)
AUTH_FAILURES = Counter("smotra_agent_auth_failures_total", "Refused agent authentications by reason.", ["reason"])
HEARTBEATS = Counter("smotra_agent_heartbeats_total", "Heartbeats stored.", ["shape"])
REPORTS = Counter("smotra_agent_reports_total", "Status reports stored.")
CONFIG_FETCHES = Counter("smotra_agent_config_fetches_total", "Configuration fetches by answer.", ["status"])
UNKNOWN_ENDPOINTS_DROPPED = Counter(
    "smotra_unknown_endpoints_dropped_total",
    "Unknown endpoint ids not remembered: their agent already has agent.max_unknown_endpoints of them.",
)
RESULTS = Counter(
    "smotra_results_total", "Result items by check type and outcome.", ["check_type", "outcome", "reason"]
)
