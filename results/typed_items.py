"""A batch item (contract §6.4) checked by msgspec in one call, with ``results.checks`` as the judge.

``results.checks``' plain functions took 21 µs per item, a fifth of a batch's server CPU
(bench/ingest_paths.py); ``msgspec.convert`` into the types below checks the same in C in about
4 µs. The types say what a valid item is and which columns it gives; they never speak to the agent.
Ingestion converts each item and, on any refusal, runs the item through ``results.checks`` instead,
which either names the error with its contract code and message, or accepts an item these types are
too strict for (an id in braces or as a URN, which uuid.UUID reads and msgspec does not): both give the
same ``ResultRow`` wherever both accept (tests/results/test_typed_items.py compares them item by
item over a table of valid, odd and bad items). So the types may be stricter than ``checks``, never
looser: each constraint below is the one its ``checks`` line applies.

Unknown keys are ignored here, as there: the item's ``check_type.result`` minus the columns is stored
as ``details`` straight from the parsed JSON, after ``validation.refuse_hostile`` (NUL, depth) ran
on the whole item as before."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from msgspec import Meta, Struct

from results.checks import MAX_PACKETS, mean_or_none
from smotra.validation import MAX_NUMBER

# validation.number: a non-negative int or float (never a bool) up to MAX_NUMBER; ints pass as floats.
Number = Annotated[float, Meta(ge=0, le=MAX_NUMBER)]
Count = Annotated[int, Meta(ge=0, le=MAX_PACKETS)]
Size = Annotated[int, Meta(ge=0, le=int(MAX_NUMBER))]
Latencies = Annotated[list[Number], Meta(max_length=10_000)]  # validation.number_list
Address = Annotated[str, Meta(max_length=64)]
Text = Annotated[str, Meta(max_length=255)]  # validation.string's default


class _Result(Struct, kw_only=True):
    """What every check's result may carry: the error of a failed check (checks._error_details)."""

    error: Annotated[str, Meta(max_length=10_000)] | None = None
    error_details: ErrorDetails | None = None

    def columns(self) -> dict:
        raise NotImplementedError


class ErrorDetails(Struct):
    errors: Annotated[list[str], Meta(max_length=1000)]


class PingResult(_Result, kw_only=True):
    resolved_ip: Address
    successes: Count
    failures: Count
    success_latencies: Latencies

    def columns(self) -> dict:
        return {
            "success": self.successes > 0,
            "resolved_ip": self.resolved_ip,
            "latency_ms": mean_or_none(self.success_latencies),
            "packets_sent": self.successes + self.failures,
            "packets_received": self.successes,
        }


class TcpResult(_Result, kw_only=True):
    connected: bool
    resolved_ip: Address | None = None
    connect_time_ms: Number | None = None

    def columns(self) -> dict:
        return {"success": self.connected, "resolved_ip": self.resolved_ip or "", "latency_ms": self.connect_time_ms}


class UdpResult(_Result, kw_only=True):
    probe_successful: bool
    resolved_ip: Address | None = None
    response_time_ms: Number | None = None

    def columns(self) -> dict:
        return {
            "success": self.probe_successful,
            "resolved_ip": self.resolved_ip or "",
            "latency_ms": self.response_time_ms,
        }


class HttpResult(_Result, kw_only=True):
    status_code: Annotated[int, Meta(ge=0, le=999)]
    success: bool
    response_time_ms: Number | None = None
    response_size_bytes: Size | None = None

    def columns(self) -> dict:
        return {"success": self.success, "status_code": self.status_code, "latency_ms": self.response_time_ms}


class Hop(Struct, kw_only=True):
    hop: Annotated[int, Meta(ge=0, le=255)]
    resolved_ip: Address | None = None
    hostname: Text | None = None
    success_latencies: Latencies | None = None


class TracerouteResult(_Result, kw_only=True):
    target_reached: bool
    hops: Annotated[list[Hop], Meta(max_length=255)]

    def columns(self) -> dict:
        last = (self.hops[-1].success_latencies or []) if self.hops else []
        return {"success": self.target_reached, "latency_ms": mean_or_none(last) if self.target_reached else None}


class PluginResult(_Result, kw_only=True):
    plugin_name: Text
    plugin_version: Text
    data: Annotated[dict[str, Annotated[str, Meta(max_length=10_000)]], Meta(max_length=1000)]
    success: bool
    response_time_ms: Number | None = None

    def columns(self) -> dict:
        return {"success": self.success, "latency_ms": self.response_time_ms}


# ``check_type`` is one of these, told apart by its ``type`` (``__struct_config__.tag``).
class _Check(Struct, tag_field="type"):
    pass


class Ping(_Check, tag="ping"):
    result: PingResult


class TcpConnect(_Check, tag="tcpconnect"):
    result: TcpResult


class UdpConnect(_Check, tag="udpconnect"):
    result: UdpResult


class HttpGet(_Check, tag="httpget"):
    result: HttpResult


class Traceroute(_Check, tag="traceroute"):
    result: TracerouteResult


class Plugin(_Check, tag="plugin"):
    result: PluginResult


class Item(Struct):
    id: UUID
    agent_id: UUID
    endpoint_id: UUID
    # Kept as text: ``validation.timestamp`` parses it as results.checks' path does (9 fractional
    # digits are truncated to the microsecond there; msgspec would round, even into the next minute).
    timestamp: Annotated[str, Meta(max_length=40)]
    check_type: Ping | TcpConnect | UdpConnect | HttpGet | Traceroute | Plugin
