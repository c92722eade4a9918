"""Helpers for the agent data-plane tests: agents with known keys, and MonitoringResults of every type.

``SAMPLES`` holds one valid ``check_type.result`` per type as the agent writes it (absent optionals as
explicit null); ``EXPECTED`` holds the columns and details the server must store for it (contract §6.4)."""

from __future__ import annotations

import uuid

from uuid6 import uuid7

from agents.keys import api_key_hash
from tests.factories import AgentFactory

KEY = "smk_test-key-of-agent-one-0000000000000000000000"
OTHER_KEY = "smk_test-key-of-agent-two-0000000000000000000000"
TIMESTAMP = "2025-06-01T12:00:00.123456789Z"


def agent_with_key(section, key: str = KEY, **fields):
    """A claimed agent of ``section`` that authenticates with ``key``."""
    return AgentFactory(section=section, api_key_hash=api_key_hash(key), **fields)


def key_header(key: str = KEY) -> dict:
    """Test-client keyword arguments carrying ``X-Agent-API-Key``."""
    return {"HTTP_X_AGENT_API_KEY": key}


SAMPLES: dict[str, dict] = {
    "ping": {
        "resolved_ip": "192.0.2.1",
        "successes": 2,
        "failures": 1,
        "success_latencies": [10.0, 20.5],
        "error_details": {"errors": ["request timed out"]},
    },
    "tcpconnect": {"resolved_ip": "192.0.2.2", "connected": True, "connect_time_ms": 1.5, "error_details": None},
    "udpconnect": {
        "resolved_ip": "2001:db8::3",
        "probe_successful": False,
        "response_time_ms": None,
        "error_details": {"errors": ["no reply"]},
    },
    "httpget": {
        "status_code": 503,
        "success": False,
        "response_time_ms": 120.25,
        "response_size_bytes": 512,
        "error_details": None,
    },
    "traceroute": {
        "target_reached": True,
        "hops": [
            {"hop": 1, "resolved_ip": "10.0.0.1", "hostname": "gw.local", "success_latencies": [1.0, 2.0]},
            {"hop": 2, "resolved_ip": None, "hostname": None, "success_latencies": None},
            {"hop": 3, "resolved_ip": "192.0.2.9", "hostname": None, "success_latencies": [7.0, 9.0]},
        ],
        "error_details": None,
    },
    "plugin": {
        "plugin_name": "dns",
        "plugin_version": "0.3.1",
        "success": True,
        "data": {"answer": "192.0.2.7", "rcode": "NOERROR"},
        "response_time_ms": 4.75,
        "error_details": None,
    },
}

_NO_PACKETS = {"packets_sent": None, "packets_received": None}

# Per type: the CheckResult columns the sample must produce, and what stays in ``details``.
EXPECTED: dict[str, tuple[dict, dict]] = {
    "ping": (
        {"success": True, "latency_ms": 15.25, "packets_sent": 3, "packets_received": 2, "status_code": None}
        | {"resolved_ip": "192.0.2.1"},
        {
            "successes": 2,
            "failures": 1,
            "success_latencies": [10.0, 20.5],
            "error_details": {"errors": ["request timed out"]},
        },
    ),
    "tcpconnect": (
        {"success": True, "latency_ms": 1.5, "status_code": None, "resolved_ip": "192.0.2.2", **_NO_PACKETS},
        {"error_details": None},
    ),
    "udpconnect": (
        {"success": False, "latency_ms": None, "status_code": None, "resolved_ip": "2001:db8::3", **_NO_PACKETS},
        {"error_details": {"errors": ["no reply"]}},
    ),
    "httpget": (
        {"success": False, "latency_ms": 120.25, "status_code": 503, "resolved_ip": "", **_NO_PACKETS},
        {"response_size_bytes": 512, "error_details": None},
    ),
    "traceroute": (
        # The primary latency of a trace that reached its target: the mean of the last hop.
        {"success": True, "latency_ms": 8.0, "status_code": None, "resolved_ip": "", **_NO_PACKETS},
        {"hops": SAMPLES["traceroute"]["hops"], "error_details": None},
    ),
    "plugin": (
        {"success": True, "latency_ms": 4.75, "status_code": None, "resolved_ip": "", **_NO_PACKETS},
        {
            "plugin_name": "dns",
            "plugin_version": "0.3.1",
            "data": {"answer": "192.0.2.7", "rcode": "NOERROR"},
            "error_details": None,
        },
    ),
}

COLUMNS = ["success", "latency_ms", "packets_sent", "packets_received", "status_code", "resolved_ip"]


def result_item(agent_id, endpoint_id, check_type: str = "ping", result: dict | None = None, **fields) -> dict:
    """One MonitoringResult as the agent sends it; ``fields`` replace top-level keys."""
    item = {
        "id": str(uuid7()),
        "agent_id": str(agent_id),
        "endpoint_id": str(endpoint_id),
        "timestamp": TIMESTAMP,
        "check_type": {"type": check_type, "result": SAMPLES[check_type] if result is None else result},
    }
    item.update(fields)
    return item


def all_types(agent_id, endpoint_id) -> list[dict]:
    return [result_item(agent_id, endpoint_id, check_type) for check_type in SAMPLES]


def stored_columns(result) -> dict:
    return {column: getattr(result, column) for column in COLUMNS}


def random_id() -> str:
    return str(uuid.uuid4())
