"""Ingestion checks each item twice over only when it must: msgspec's types (results.typed_items)
first, results.checks' plain functions for whatever those refuse. These tests hold the two to one
another item by item: the types never accept what the plain checks refuse, accept it with the same
row when both accept, and accept every valid item the agent sends (or the fast path would quietly
stop being taken). The stored outcome over HTTP is test_results_ingest.py's."""

from __future__ import annotations

import copy
import typing
import uuid

import pytest
from uuid6 import uuid7

from results.services.ingest import _candidate, _checked_candidate, _typed_candidate
from results.typed_items import Item
from smotra.errors import DomainError
from tests.factories import AgentFactory
from tests.results import SAMPLES, TIMESTAMP

AGENT = AgentFactory.build()
DELETE = object()


def item(check_type: str, **result_changes) -> dict:
    result = copy.deepcopy(SAMPLES[check_type])
    for key, value in result_changes.items():
        if value is DELETE:
            del result[key]
        else:
            result[key] = value
    return {
        "id": str(uuid7()),
        "agent_id": str(AGENT.pk),
        "endpoint_id": str(uuid.uuid4()),
        "timestamp": TIMESTAMP,
        "check_type": {"type": check_type, "result": result},
    }


def changed(base: dict, **changes) -> dict:
    new = copy.deepcopy(base)
    for key, value in changes.items():
        if value is DELETE:
            del new[key]
        else:
            new[key] = value
    return new


def nested(levels: int):
    value: dict = {}
    for _ in range(levels):
        value = {"x": value}
    return value


PING = item("ping")
# Valid items, some of them odd: the plain checks accept each (asserted below).
VALID = {f"sample {check_type}": item(check_type) for check_type in SAMPLES} | {
    "ping, integer latencies": item("ping", success_latencies=[10, 20]),
    "ping, no latencies": item("ping", successes=0, failures=3, success_latencies=[]),
    "ping, negative zero latency": item("ping", success_latencies=[-0.0]),
    "ping, error_details absent": item("ping", error_details=DELETE),
    "ping, an older agent's error string": item("ping", error="timeout"),
    "ping, an extra key": item("ping", ttl=64),
    "ping, an extra key with a big integer": item("ping", counter=10**30),
    "ping, empty resolved_ip": item("ping", resolved_ip=""),
    "ping, error_details with an extra key": item("ping", error_details={"errors": [], "code": 7}),
    "ping, extra key beside the item": changed(PING, note={"a": [1, 2]}),
    "ping, extra key beside the type": changed(PING, check_type=PING["check_type"] | {"version": 2}),
    "ping, ids in upper case": changed(PING, id=PING["id"].upper(), endpoint_id=PING["endpoint_id"].upper()),
    "ping, ids without hyphens": changed(PING, id=uuid.UUID(PING["id"]).hex),
    "ping, id in braces": changed(PING, id="{" + PING["id"] + "}"),
    "ping, timestamp with an offset": changed(PING, timestamp="2025-06-01T14:00:00.5+02:00"),
    "ping, timestamp without fraction": changed(PING, timestamp="2025-06-01T12:00:00Z"),
    "ping, 60 levels of nesting beside it": changed(PING, extra=nested(60)),
    "tcp, no address (failed lookup)": item("tcpconnect", connected=False, resolved_ip=None, connect_time_ms=None),
    "tcp, integer latency": item("tcpconnect", connect_time_ms=3),
    "udp, no optionals at all": item("udpconnect", resolved_ip=DELETE, response_time_ms=DELETE, error_details=DELETE),
    "http, status 0 (no answer)": item("httpget", status_code=0, response_size_bytes=None),
    "traceroute, not reached": item("traceroute", target_reached=False),
    "traceroute, no hops": item("traceroute", hops=[]),
    "traceroute, a hop with an extra key": item("traceroute", hops=[{"hop": 1, "rtt": 3}]),
    "plugin, empty data": item("plugin", data={}),
}
# Bad items: the plain checks refuse each (asserted below), with the code the contract gives.
BAD = {
    "not an object": [],
    "a string": "x",
    "id missing": changed(PING, id=DELETE),
    "id not a UUID": changed(PING, id="nope"),
    "agent_id of another agent": changed(PING, agent_id=str(uuid.uuid4())),
    "endpoint_id a number": changed(PING, endpoint_id=7),
    "timestamp without a zone": changed(PING, timestamp="2025-06-01T12:00:00"),
    "timestamp of 41 characters": changed(PING, timestamp="2025-06-01T12:00:00." + "1" * 20 + "Z"),
    "timestamp out of range once in UTC": changed(PING, timestamp="0001-01-01T00:00:00+01:00"),
    "timestamp a number": changed(PING, timestamp=1),
    "check_type missing": changed(PING, check_type=DELETE),
    "check_type a list": changed(PING, check_type=[]),
    "unknown type": changed(PING, check_type={"type": "icmp", "result": {}}),
    "type a list": changed(PING, check_type={"type": ["ping"], "result": {}}),
    "result missing": changed(PING, check_type={"type": "ping"}),
    "result a list": changed(PING, check_type={"type": "ping", "result": []}),
    "NUL in resolved_ip": item("ping", resolved_ip="192.0.2.1\x00"),
    "NUL in an extra key's name": item("ping", **{"a\x00": 1}),
    "NUL beside the item": changed(PING, note="\x00"),
    "65 levels of nesting in result": item("ping", extra=nested(62)),
    "negative latency": item("ping", success_latencies=[-1.0]),
    "a boolean latency": item("ping", success_latencies=[True]),
    "latency past 1e15": item("ping", success_latencies=[1e16]),
    "10,001 latencies": item("ping", success_latencies=[1.0] * 10_001),
    "successes a float": item("ping", successes=2.0),
    "successes a boolean": item("ping", successes=True),
    "packets past a billion": item("ping", failures=10**10),
    "ping without resolved_ip": item("ping", resolved_ip=DELETE),
    "ping resolved_ip null": item("ping", resolved_ip=None),
    "resolved_ip of 65 characters": item("ping", resolved_ip="1" * 65),
    "error a number": item("ping", error=5),
    "error of 10,001 characters": item("ping", error="e" * 10_001),
    "error_details a string": item("ping", error_details="boom"),
    "error_details.errors not strings": item("ping", error_details={"errors": [1]}),
    "error_details.errors null": item("ping", error_details={"errors": None}),
    "1,001 errors": item("ping", error_details={"errors": ["x"] * 1001}),
    "tcp connected missing": item("tcpconnect", connected=DELETE),
    "tcp connected a string": item("tcpconnect", connected="yes"),
    "tcp latency negative": item("tcpconnect", connect_time_ms=-1),
    "udp latency a string": item("udpconnect", response_time_ms="3"),
    "http status past 999": item("httpget", status_code=1000),
    "http status a float": item("httpget", status_code=200.0),
    "http size negative": item("httpget", response_size_bytes=-1),
    "http size a float": item("httpget", response_size_bytes=1.5),
    "http success missing": item("httpget", success=DELETE),
    "traceroute hops an object": item("traceroute", hops={}),
    "traceroute 256 hops": item("traceroute", hops=[{"hop": 1}] * 256),
    "traceroute hop 256": item("traceroute", hops=[{"hop": 256}]),
    "traceroute hop without its number": item("traceroute", hops=[{"resolved_ip": None}]),
    "traceroute hop a number": item("traceroute", hops=[3]),
    "traceroute hostname of 256 characters": item("traceroute", hops=[{"hop": 1, "hostname": "h" * 256}]),
    "traceroute hop latency negative": item("traceroute", hops=[{"hop": 1, "success_latencies": [-2]}]),
    "traceroute target_reached missing": item("traceroute", target_reached=DELETE),
    "plugin data value a number": item("plugin", data={"a": 1}),
    "plugin 1,001 data entries": item("plugin", data={str(n): "" for n in range(1001)}),
    "plugin data value of 10,001 characters": item("plugin", data={"a": "x" * 10_001}),
    "plugin data missing": item("plugin", data=DELETE),
    "plugin name null": item("plugin", plugin_name=None),
    "plugin version of 256 characters": item("plugin", plugin_version="v" * 256),
}


def checked(value):
    """The plain checks' word on an item: its row, or the refusal's code."""
    try:
        return _checked_candidate(AGENT, 0, value).result
    except DomainError as exc:
        return exc.code


def typed(value):
    try:
        return _typed_candidate(AGENT, 0, value).result
    except Exception as exc:  # any refusal at all is what this asks about
        return type(exc).__name__


def test_the_tables_say_what_the_plain_checks_say():
    assert all(not isinstance(checked(value), str) for value in VALID.values())
    assert all(isinstance(checked(value), str) for value in BAD.values())


@pytest.mark.parametrize("name", list(VALID) + list(BAD))
def test_the_types_accept_nothing_the_plain_checks_refuse_and_give_the_same_row(name):
    value = (VALID | BAD)[name]
    fast, exact = typed(value), checked(value)
    if not isinstance(fast, str):
        assert fast == exact
    try:
        combined = _candidate(AGENT, 0, value).result
    except DomainError as exc:
        combined = exc.code
    assert combined == exact  # what ingestion acts on is always the plain checks' word


STRICTER_BY_DESIGN = {"ping, id in braces"}


@pytest.mark.parametrize("name", sorted(set(VALID) - STRICTER_BY_DESIGN))
def test_every_valid_item_takes_the_typed_path(name):
    assert not isinstance(typed(VALID[name]), str), typed(VALID[name])


def test_the_typed_path_refuses_what_it_is_stricter_about_only_to_hand_it_on():
    for name in STRICTER_BY_DESIGN:
        assert isinstance(typed(VALID[name]), str)
        assert _candidate(AGENT, 0, VALID[name]).result == checked(VALID[name])


def test_the_item_type_lists_every_check_type_ingestion_knows():
    from results.checks import CHECKS

    tags = {member.__struct_config__.tag for member in typing.get_args(typing.get_type_hints(Item)["check_type"])}
    assert tags == set(CHECKS)
