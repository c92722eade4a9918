"""Validation of one MonitoringResult's ``check_type`` (contract §6.4) and its mapping onto columns."""

from __future__ import annotations

from statistics import fmean

from smotra import validation as v
from smotra.errors import Invalid


def _error_details(result: dict, path: str) -> None:
    """``error_details: {"errors": [str]}``, or the older agents' plain string ``error`` (kept as sent)."""
    v.string(result, "error", f"{path}.error", max_length=10_000)
    details = v.mapping(result, "error_details", f"{path}.error_details")
    if details is None:
        return
    errors = details.get("errors")
    if not isinstance(errors, list) or not all(isinstance(item, str) for item in errors) or len(errors) > 1000:
        raise Invalid(f"{path}.error_details.errors must be a list of strings.", field=f"{path}.error_details.errors")


def mean_or_none(values) -> float | None:
    return fmean(values) if values else None


# packets_sent (successes + failures) is a 32-bit column: a larger count would fail the whole batch's
# INSERT on PostgreSQL, and the agent would resend that batch forever.
MAX_PACKETS = 1_000_000_000


def _ping(result: dict, p: str) -> dict:
    successes = v.number(result, "successes", f"{p}.successes", required=True, integer=True, maximum=MAX_PACKETS)
    failures = v.number(result, "failures", f"{p}.failures", required=True, integer=True, maximum=MAX_PACKETS)
    latencies = v.number_list(result, "success_latencies", f"{p}.success_latencies", required=True)
    return {
        "success": successes > 0,
        "resolved_ip": v.string(result, "resolved_ip", f"{p}.resolved_ip", required=True, max_length=64),
        "latency_ms": mean_or_none(latencies),
        "packets_sent": successes + failures,
        "packets_received": successes,
    }


def _tcp(result: dict, p: str) -> dict:
    return {
        "success": v.boolean(result, "connected", f"{p}.connected", required=True),
        # Optional: a failed DNS lookup has no address, and it is a down event to store, not bad input.
        "resolved_ip": v.string(result, "resolved_ip", f"{p}.resolved_ip", max_length=64),
        "latency_ms": v.number(result, "connect_time_ms", f"{p}.connect_time_ms"),
    }


def _udp(result: dict, p: str) -> dict:
    return {
        "success": v.boolean(result, "probe_successful", f"{p}.probe_successful", required=True),
        "resolved_ip": v.string(result, "resolved_ip", f"{p}.resolved_ip", max_length=64),  # as tcpconnect
        "latency_ms": v.number(result, "response_time_ms", f"{p}.response_time_ms"),
    }


def _http(result: dict, p: str) -> dict:
    v.number(result, "response_size_bytes", f"{p}.response_size_bytes", integer=True)
    return {
        "success": v.boolean(result, "success", f"{p}.success", required=True),
        "status_code": v.number(result, "status_code", f"{p}.status_code", required=True, integer=True, maximum=999),
        "latency_ms": v.number(result, "response_time_ms", f"{p}.response_time_ms"),
    }


def _hop(hop, path: str) -> list:
    if not isinstance(hop, dict):
        raise Invalid(f"{path} must be an object.", field=path)
    v.number(hop, "hop", f"{path}.hop", required=True, integer=True, maximum=255)
    v.string(hop, "resolved_ip", f"{path}.resolved_ip", max_length=64)
    v.string(hop, "hostname", f"{path}.hostname")
    return v.number_list(hop, "success_latencies", f"{path}.success_latencies") or []


def _traceroute(result: dict, p: str) -> dict:
    hops = result.get("hops")
    if not isinstance(hops, list) or len(hops) > 255:
        raise Invalid(f"{p}.hops must be a list of at most 255 hops.", field=f"{p}.hops")
    latencies = [_hop(hop, f"{p}.hops[{index}]") for index, hop in enumerate(hops)]
    reached = v.boolean(result, "target_reached", f"{p}.target_reached", required=True)
    return {"success": reached, "latency_ms": mean_or_none(latencies[-1]) if reached and latencies else None}


def _plugin(result: dict, p: str) -> dict:
    v.string(result, "plugin_name", f"{p}.plugin_name", required=True)
    v.string(result, "plugin_version", f"{p}.plugin_version", required=True)
    data = v.mapping(result, "data", f"{p}.data", required=True)
    if len(data) > 1000 or not all(isinstance(value, str) and len(value) <= 10_000 for value in data.values()):
        raise Invalid(f"{p}.data must map strings to strings.", field=f"{p}.data")
    return {
        "success": v.boolean(result, "success", f"{p}.success", required=True),
        "latency_ms": v.number(result, "response_time_ms", f"{p}.response_time_ms"),
    }


CHECKS = {
    "ping": _ping,
    "tcpconnect": _tcp,
    "udpconnect": _udp,
    "httpget": _http,
    "traceroute": _traceroute,
    "plugin": _plugin,
}
# Keys kept as columns; the rest of ``result`` is stored as ``details``.
COLUMN_KEYS = {
    "ping": {"resolved_ip"},
    "tcpconnect": {"resolved_ip", "connected", "connect_time_ms"},
    "udpconnect": {"resolved_ip", "probe_successful", "response_time_ms"},
    "httpget": {"status_code", "success", "response_time_ms"},
    "traceroute": {"target_reached"},
    "plugin": {"success", "response_time_ms"},
}


def check_columns(check_type: str, result, path: str) -> tuple[dict, dict]:
    """Validate ``result`` for ``check_type``: (column values, details). Raises Invalid.

    NUL characters and nesting depth are the caller's to refuse first (``validation.refuse_hostile``
    on the whole item: one walk per item, not one per part)."""
    if not isinstance(result, dict):
        raise Invalid(f"{path} must be an object.", field=path)
    columns = CHECKS[check_type](result, path)
    _error_details(result, path)
    columns["resolved_ip"] = columns.get("resolved_ip") or ""
    details = {key: value for key, value in result.items() if key not in COLUMN_KEYS[check_type]}
    return columns, details
