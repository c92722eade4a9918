"""Every field of every agent-facing and management request body takes its JSON type at its word.

A number is never a UUID or a string, a string is never a number or a boolean, an object or a list
is never a scalar, and ``null`` inside an array is refused: each wrong value is a 400
``validation_error`` naming the field (``ipAddresses[0]``), and nothing is stored. Result batches
refuse the item instead (202, the item's rejection names the field), as the contract requires.

The table is declarative: a route, a valid body, and the type of each field; the wrong values for
each type are generated."""

from __future__ import annotations

import copy
import hashlib
import re
import uuid

import pytest

from agents.models import AgentRegistration
from results.models import AgentStatusReport, CheckResult, Heartbeat
from tests.factories import EndpointFactory, TagFactory, UserFactory
from tests.results import agent_with_key, key_header, result_item

pytestmark = pytest.mark.django_db

WRONG = {
    "string": [123, 1.5, True, [], {}],
    "uuid": [123, 2**100, True, [], {}],
    "integer": ["5", 1.5, True, [], {}],
    "number": ["5", True, [], {}],
    "boolean": ["true", 1, 0, [], {}],
    "object": ["x", 1, [], True],
    "list": ["x", 1, {}, True],
    "item": [None],  # a list's item: null is refused where an object or a value belongs
}

AGENT_STATUS = {
    "agent_version": "0.9.1",
    "config_version": 3,
    "is_running": True,
    "started_at": "2025-06-01T11:00:00Z",
    "checks_performed": 120,
    "failed_report_count": 0,
    "server_connected": True,
    "cache_stats": {"len": 5, "capacity": 10000},
}
STATUS_TYPES = {
    "agent_version": "string",
    "config_version": "integer",
    "is_running": "boolean",
    "started_at": "string",
    "checks_performed": "integer",
    "failed_report_count": "integer",
    "server_connected": "boolean",
    "cache_stats": "object",
    "cache_stats.len": "integer",
}


def _nested(prefix: str, types: dict) -> dict:
    return {f"{prefix}.{path}": kind for path, kind in types.items()}


def set_path(body, path: str, value):
    """``set_path(body, "a.b[0].c", 1)``: replace one value deep inside a JSON body."""
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    target = body
    for part in parts[:-1]:
        target = target[int(part[1:-1])] if part.startswith("[") else target[part]
    last = parts[-1]
    if last.startswith("["):
        target[int(last[1:-1])] = value
    else:
        target[last] = value


def cases(table):
    for route, (_body, types) in table.items():
        for path, kind in types.items():
            for value in WRONG[kind]:
                yield pytest.param(route, path, value, id=f"{route}:{path}={value!r}")


# ---------------------------------------------------------------------------------------------
# Agent-facing routes


REGISTRATION = {
    "agentId": "0197f96c-b278-7f64-a32f-dae3cabe1ff0",
    "claimTokenHash": hashlib.sha256(b"token").hexdigest(),
    "hostname": "probe-1",
    "agentVersion": "0.4.2",
    "ipAddresses": [{"ip": "192.0.2.10", "iface": "eth0", "family": "ipv4", "recommended": True}],
}
FLAT_HEARTBEAT = {
    "timestamp": "2025-06-01T11:59:58Z",
    "status": "healthy",
    "cpu_usage_percent": 12.5,
    "memory_usage_mb": 48.25,
    "memory_total_mb": 16384,
    "system_uptime_secs": 864000,
}
NESTED_HEARTBEAT = {
    "timestamp": "2025-06-01T11:59:59Z",
    "health_status": "healthy",
    "metrics": {"agent_uptime_secs": 3600, "cpu_usage_percent": 0.75, "memory_usage_mb": 31.5},
    "agent_status": AGENT_STATUS,
}

AGENT_ROUTES = {
    "register": (
        REGISTRATION,
        {
            "agentId": "uuid",
            "claimTokenHash": "string",
            "hostname": "string",
            "agentVersion": "string",
            "ipAddresses": "list",
            "ipAddresses[0]": "item",
            "ipAddresses[0].ip": "string",
            "ipAddresses[0].iface": "string",
            "ipAddresses[0].family": "string",
            "ipAddresses[0].recommended": "boolean",
        },
    ),
    "flat-heartbeat": (
        FLAT_HEARTBEAT,
        {
            "timestamp": "string",
            "status": "string",
            "cpu_usage_percent": "number",
            "memory_usage_mb": "number",
            "memory_total_mb": "number",
            "system_uptime_secs": "integer",
        },
    ),
    "nested-heartbeat": (
        NESTED_HEARTBEAT,
        {
            "health_status": "string",
            "metrics": "object",
            "metrics.agent_uptime_secs": "integer",
            "metrics.cpu_usage_percent": "number",
            "agent_status": "object",
            **_nested("agent_status", STATUS_TYPES),
        },
    ),
    "report": (AGENT_STATUS, STATUS_TYPES),
}


@pytest.fixture
def agent(section_a):
    return agent_with_key(section_a)


def agent_request(api_client, agent, route: str, body):
    if route == "register":
        return api_client.post("/api/v1/agent/register", body, format="json")
    path = {"report": "report"}.get(route, "heartbeat")
    return api_client.post(f"/api/v1/agent/{agent.pk}/{path}", body, format="json", **key_header())


@pytest.mark.parametrize(("route", "path", "value"), list(cases(AGENT_ROUTES)))
def test_agent_bodies_refuse_wrong_types(api_client, agent, assert_error, route, path, value):
    body = copy.deepcopy(AGENT_ROUTES[route][0])
    set_path(body, path, value)
    response = agent_request(api_client, agent, route, body)
    assert_error(response, 400, "validation_error", field=path)
    assert (AgentRegistration.objects.count(), Heartbeat.objects.count(), AgentStatusReport.objects.count()) == (
        0,
        0,
        0,
    )


@pytest.mark.parametrize("route", list(AGENT_ROUTES))
def test_the_valid_agent_bodies_of_the_table_are_accepted(api_client, agent, route):
    response = agent_request(api_client, agent, route, copy.deepcopy(AGENT_ROUTES[route][0]))
    assert response.status_code in (201, 202, 204), response.content


RESULT_TYPES = {
    "id": "uuid",
    "agent_id": "uuid",
    "endpoint_id": "uuid",
    "timestamp": "string",
    "check_type": "object",
    "check_type.result": "object",
    "check_type.result.resolved_ip": "string",
    "check_type.result.successes": "integer",
    "check_type.result.failures": "integer",
    "check_type.result.success_latencies": "list",
    "check_type.result.success_latencies[0]": "item",
}


@pytest.mark.parametrize(
    ("path", "value"), [(path, value) for path, kind in RESULT_TYPES.items() for value in WRONG[kind]]
)
def test_a_result_of_the_wrong_type_is_rejected_alone_naming_its_field(api_client, agent, section_a, path, value):
    endpoint = EndpointFactory(section=section_a)
    # Deep copies: result_item shares the module's sample results, which must stay intact.
    good, bad = copy.deepcopy(result_item(agent.pk, endpoint.pk)), copy.deepcopy(result_item(agent.pk, endpoint.pk))
    set_path(bad, path, value)
    response = api_client.post(
        f"/api/v1/agent/{agent.pk}/results", {"results": [good, bad]}, format="json", **key_header()
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 1
    [rejection] = body["rejected"]
    assert rejection["index"] == 1 and rejection["error"] == "validation_error"
    assert f"results[1].{path}" in rejection["message"]
    assert list(CheckResult.objects.values_list("pk", flat=True)) == [uuid.UUID(good["id"])]


# ---------------------------------------------------------------------------------------------
# Management API


@pytest.fixture
def world(section_a):
    UserFactory(username="newbie")
    return {"section": section_a, "tag": TagFactory(section=section_a)}


def management_routes(world, agent) -> dict:
    section, tag = str(world["section"].pk), str(world["tag"].pk)
    return {
        "tags": ("post", "/api/v1/tags", {"section_id": section, "name": "web", "scope": "global"}),
        "endpoints": (
            "post",
            "/api/v1/endpoints",
            {
                "section_id": section,
                "address": "192.0.2.1",
                "port": 443,
                "enabled": True,
                "description": "x",
                "tag_ids": [tag],
            },
        ),
        "topologies": (
            "post",
            "/api/v1/topologies",
            {"section_id": section, "name": "mesh", "type": "full-mesh", "enabled": True, "monitor_tag_ids": [tag]},
        ),
        "sections": ("post", "/api/v1/sections", {"tenant_id": str(world["section"].tenant_id), "name": "s2"}),
        "memberships": (
            "post",
            "/api/v1/memberships",
            {"tenant_id": str(world["section"].tenant_id), "username": "newbie", "role": "viewer"},
        ),
        "agent": (
            "patch",
            f"/api/v1/agents/{agent.pk}",
            {"name": "n", "section_id": section, "tag_ids": [tag], "monitoring_overrides": {"interval_secs": 30}},
        ),
        "claim": (
            "post",
            "/api/v1/agents/claim",
            {"agentId": str(uuid.uuid4()), "claimToken": "t", "sectionId": section, "name": "n"},
        ),
    }


MANAGEMENT_TYPES = {
    "tags": {"section_id": "uuid", "name": "string", "scope": "string"},
    "endpoints": {
        "section_id": "uuid",
        "address": "string",
        "port": "integer",
        "enabled": "boolean",
        "description": "string",
        "tag_ids": "list",
        "tag_ids[0]": "uuid",
    },
    "topologies": {
        "section_id": "uuid",
        "name": "string",
        "type": "string",
        "enabled": "boolean",
        "monitor_tag_ids[0]": "uuid",
    },
    "sections": {"tenant_id": "uuid", "name": "string"},
    "memberships": {"tenant_id": "uuid", "username": "string", "role": "string"},
    "agent": {"name": "string", "section_id": "uuid", "tag_ids[0]": "uuid", "monitoring_overrides": "object"},
    "claim": {"agentId": "uuid", "claimToken": "string", "sectionId": "uuid", "name": "string"},
}
MANAGEMENT_CASES = [
    pytest.param(route, path, value, id=f"{route}:{path}={value!r}")
    for route, types in MANAGEMENT_TYPES.items()
    for path, kind in types.items()
    for value in [*WRONG[kind], *([None] if path.endswith("]") else [])]
]


@pytest.mark.parametrize(("route", "path", "value"), MANAGEMENT_CASES)
def test_management_bodies_refuse_wrong_types(
    client_for, alice, world, agent, db_state, assert_error, route, path, value
):
    method, url, valid = management_routes(world, agent)[route]
    body = copy.deepcopy(valid)
    set_path(body, path, value)
    before = db_state()
    response = getattr(client_for(alice), method)(url, body, format="json")
    assert_error(response, 400, "validation_error", field=path)
    assert db_state() == before


# A valid claim needs a registration: tests/agents/test_claim.py covers it.
@pytest.mark.parametrize("route", [route for route in MANAGEMENT_TYPES if route != "claim"])
def test_the_valid_management_bodies_of_the_table_are_accepted(client_for, alice, world, agent, api_client, route):
    method, url, valid = management_routes(world, agent)[route]
    response = getattr(client_for(alice), method)(url, copy.deepcopy(valid), format="json")
    assert response.status_code in (200, 201), response.content


@pytest.mark.parametrize(("field", "value"), [("username", 5), ("password", 12345), ("username", ["a"])])
def test_the_token_request_refuses_wrong_types(api_client, alice, assert_error, field, value):
    body = {"username": "alice", "password": "pw", field: value}
    assert_error(api_client.post("/api/v1/auth/token", body, format="json"), 400, "validation_error", field=field)
