"""Deeply nested JSON, NUL characters and lone surrogates in agent bodies (contract §6.2-§6.4).

Nesting is bounded at MAX_JSON_DEPTH (64) levels, the body (or the result item) being level 1:
a heartbeat or report beyond it is a 400 naming the field, a result item beyond it is refused
alone (the agent resends a failed batch forever: no poison batches). Nothing the JSON decoder
accepts may be a 500; beyond what it accepts (~1,000 levels) the body is invalid_json."""

from __future__ import annotations

import json
import sys

import pytest

from agents.models import Agent
from results.models import AgentStatusReport, CheckResult, Heartbeat
from smotra.api.parsers import _has_lone_surrogate
from smotra.validation import MAX_JSON_DEPTH, NUL, TOO_DEEP, contains_nul, json_problem
from tests.factories import EndpointFactory
from tests.results import KEY, SAMPLES, agent_with_key, key_header, result_item

pytestmark = pytest.mark.django_db

DEEP = "__deep__"  # placeholder replaced by raw nested arrays (json.dumps itself recurses)

AGENT_STATUS = {"agent_version": "0.9.1", "is_running": True, "cache_stats": {"len": 1, "capacity": 10}}
HEARTBEAT = {"health_status": "healthy", "metrics": {"cpu_usage_percent": 1.0}, "agent_status": AGENT_STATUS}


@pytest.fixture(autouse=True)
def gunicorn_sized_stack():
    """The JSON decoder's depth shares Python's recursion limit with its caller's frames, and the
    test client calls it far deeper in the stack than gunicorn does (which decodes ~940 levels): with
    this room the decoder accepts 990 levels, so the code after it meets them (the old recursive
    NUL scan died at ~400). The real-server test at the end uses 900 levels without it."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + 500)
    yield
    sys.setrecursionlimit(limit)


@pytest.fixture
def agent(section_a):
    return agent_with_key(section_a, name="probe", agent_version="0.9.0")


@pytest.fixture
def endpoint(section_a):
    return EndpointFactory(section=section_a, address="192.0.2.1")


def arrays(levels: int, leaf: str = "") -> str:
    """``levels`` JSON arrays nested in one another, ``leaf`` (raw JSON) innermost."""
    return "[" * levels + leaf + "]" * levels


def with_deep(body, levels: int, leaf: str = "") -> bytes:
    """``body`` as JSON with its DEEP placeholder replaced by ``levels`` nested arrays."""
    text = json.dumps(body)
    assert text.count(json.dumps(DEEP)) == 1
    return text.replace(json.dumps(DEEP), arrays(levels, leaf)).encode()


def post(client, agent, route: str, raw: bytes, prefix: str = "/v1"):
    return client.post(
        f"{prefix}/agent/{agent.pk}/{route}", data=raw, content_type="application/json", **key_header(KEY)
    )


# ---------------------------------------------------------------------------------------------
# Heartbeats: the body is level 1, agent_status level 2, its ``extra`` arrays from level 3.


def heartbeat_with(levels: int, where: str = "agent_status") -> bytes:
    if where == "agent_status.cache_stats":
        body = {**HEARTBEAT, "agent_status": {**AGENT_STATUS, "cache_stats": {"len": 1, "extra": DEEP}}}
    elif where == "agent_status":
        body = {**HEARTBEAT, "agent_status": {**AGENT_STATUS, "extra": DEEP}}
    else:
        body = {**HEARTBEAT, "extra": DEEP}
    return with_deep(body, levels)


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH - 1, 988], ids=["depth_65", "depth_990"])
def test_a_heartbeat_nested_too_deep_is_a_400_naming_agent_status(client, agent, assert_error, levels):
    body = assert_error(post(client, agent, "heartbeat", heartbeat_with(levels)), 400, "validation_error")

    assert body["details"][0]["field"] == "agent_status"
    assert "64" in body["message"]
    assert not Heartbeat.objects.exists()
    assert Agent.objects.get(pk=agent.pk).last_seen_at is None


@pytest.mark.parametrize(
    ("where", "levels", "field"),
    [("agent_status.cache_stats", MAX_JSON_DEPTH - 2, "agent_status.cache_stats"), ("body", MAX_JSON_DEPTH, "body")],
)
def test_a_too_deep_heartbeat_names_the_deepest_known_object(client, agent, assert_error, where, levels, field):
    assert_error(post(client, agent, "heartbeat", heartbeat_with(levels, where)), 400, "validation_error", field=field)


def test_a_heartbeat_exactly_64_levels_deep_is_stored(client, agent):
    response = post(client, agent, "heartbeat", heartbeat_with(MAX_JSON_DEPTH - 2))

    assert response.status_code == 204, response.content
    assert levels_of(Heartbeat.objects.get().agent_status["extra"]) == MAX_JSON_DEPTH - 2


def levels_of(stored) -> int:
    """How many arrays are nested in ``stored`` (as built by :func:`arrays`)."""
    depth = 0
    while isinstance(stored, list):
        stored, depth = stored[0] if stored else None, depth + 1
    return depth


# ---------------------------------------------------------------------------------------------
# Status reports: the body (the bare agent_status) is level 1.


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH, 989], ids=["depth_65", "depth_990"])
def test_a_report_nested_too_deep_is_a_400(client, agent, assert_error, levels):
    raw = with_deep({**AGENT_STATUS, "extra": DEEP}, levels)

    assert_error(post(client, agent, "report", raw), 400, "validation_error", field="body")
    assert not AgentStatusReport.objects.exists()


def test_a_report_too_deep_in_cache_stats_names_it(client, agent, assert_error):
    raw = with_deep({**AGENT_STATUS, "cache_stats": {"len": 1, "extra": DEEP}}, MAX_JSON_DEPTH - 1)

    assert_error(post(client, agent, "report", raw), 400, "validation_error", field="cache_stats")


def test_a_report_exactly_64_levels_deep_is_accepted(client, agent):
    response = post(client, agent, "report", with_deep({**AGENT_STATUS, "extra": DEEP}, MAX_JSON_DEPTH - 1))

    assert response.status_code == 202, response.content
    assert AgentStatusReport.objects.get().agent_version == "0.9.1"


# ---------------------------------------------------------------------------------------------
# Result batches: each item is level 1, check_type 2, result 3, its unknown keys from level 4.


def deep_item(agent, endpoint) -> dict:
    """An httpget result whose unknown ``future_field`` (kept in details) holds the DEEP placeholder."""
    return result_item(agent.pk, endpoint.pk, "httpget", {**SAMPLES["httpget"], "future_field": DEEP})


def batch_with_deep_item(agent, endpoint, levels: int, good: int = 2) -> tuple[bytes, list[dict]]:
    items = [result_item(agent.pk, endpoint.pk, "tcpconnect") for _ in range(good)]
    items.insert(1, deep_item(agent, endpoint))
    return with_deep({"results": items}, levels), items


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH - 2, 987], ids=["depth_65", "depth_990"])
def test_a_result_nested_too_deep_is_refused_alone(client, agent, endpoint, levels):
    raw, items = batch_with_deep_item(agent, endpoint, levels)

    response = post(client, agent, "results", raw)

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["accepted"], body["duplicates_skipped"]) == (2, 0)
    [rejection] = body["rejected"]
    assert (rejection["index"], rejection["id"], rejection["error"]) == (1, items[1]["id"], "validation_error")
    assert "results[1].check_type.result" in rejection["message"] and "64" in rejection["message"]
    assert {str(pk) for pk in CheckResult.objects.values_list("pk", flat=True)} == {items[0]["id"], items[2]["id"]}


def test_a_resent_batch_with_a_too_deep_result_is_again_a_202(client, agent, endpoint):
    raw, _ = batch_with_deep_item(agent, endpoint, 987)
    assert post(client, agent, "results", raw).status_code == 202

    again = post(client, agent, "results", raw)

    assert again.status_code == 202, again.content
    body = again.json()
    assert (body["accepted"], body["duplicates_skipped"]) == (0, 2)
    assert [(rejection["index"], rejection["error"]) for rejection in body["rejected"]] == [(1, "validation_error")]
    assert CheckResult.objects.count() == 2


def test_a_result_exactly_64_levels_deep_is_stored(client, agent, endpoint):
    raw, items = batch_with_deep_item(agent, endpoint, MAX_JSON_DEPTH - 3, good=0)

    body = post(client, agent, "results", raw).json()

    assert (body["accepted"], body["rejected"]) == (1, [])
    stored = CheckResult.objects.get()
    assert str(stored.pk) == items[0]["id"]
    assert levels_of(stored.details["future_field"]) == MAX_JSON_DEPTH - 3


def test_a_result_nested_beyond_the_decoder_refuses_the_batch_as_invalid_json(client, agent, endpoint, assert_error):
    raw, _ = batch_with_deep_item(agent, endpoint, 100_000)

    assert_error(post(client, agent, "results", raw), 400, "invalid_json")
    assert not CheckResult.objects.exists()


# ---------------------------------------------------------------------------------------------
# NUL characters and lone surrogates, shallow or deep


def test_a_nul_deep_inside_a_heartbeat_is_still_refused(client, agent, assert_error):
    raw = with_deep({**HEARTBEAT, "agent_status": {**AGENT_STATUS, "extra": DEEP}}, 60, leaf='"a\\u0000b"')

    assert_error(post(client, agent, "heartbeat", raw), 400, "validation_error", field="body")
    assert not Heartbeat.objects.exists()


def test_a_nul_deep_inside_a_result_refuses_that_item(client, agent, endpoint):
    items = [deep_item(agent, endpoint), result_item(agent.pk, endpoint.pk, "tcpconnect")]
    raw = with_deep({"results": items}, 50, leaf='"\\u0000"')

    body = post(client, agent, "results", raw).json()

    assert [(rejection["index"], rejection["error"]) for rejection in body["rejected"]] == [(0, "validation_error")]
    assert "NUL" in body["rejected"][0]["message"]
    assert body["accepted"] == 1


@pytest.mark.parametrize("route", ["heartbeat", "report", "results"])
def test_a_lone_surrogate_deep_inside_is_invalid_json(client, agent, endpoint, assert_error, route):
    levels = 900
    if route == "results":
        raw = with_deep({"results": [deep_item(agent, endpoint)]}, levels, leaf='"\\udfff"')
    else:
        raw = with_deep({**AGENT_STATUS, "extra": DEEP}, levels, leaf='{"\\ud800": 1}')

    assert_error(post(client, agent, route, raw), 400, "invalid_json")
    assert not (Heartbeat.objects.exists() or AgentStatusReport.objects.exists() or CheckResult.objects.exists())


# ---------------------------------------------------------------------------------------------
# The walks themselves: iterative, so no depth makes them raise RecursionError.


def python_arrays(levels: int, leaf=None) -> list:
    value = [] if leaf is None else [leaf]
    for _ in range(levels - 1):
        value = [value]
    return value


def test_the_walks_do_not_recurse():
    deep = python_arrays(100_000)

    assert json_problem(deep) == TOO_DEEP
    assert not contains_nul(deep)
    assert contains_nul(python_arrays(100_000, {"k\x00": 1}))
    assert not _has_lone_surrogate(deep)
    assert _has_lone_surrogate(python_arrays(100_000, {"\ud800": 1}))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (python_arrays(MAX_JSON_DEPTH), None),
        (python_arrays(MAX_JSON_DEPTH + 1), TOO_DEEP),
        ({"a": python_arrays(MAX_JSON_DEPTH - 1)}, None),
        ({"a": python_arrays(MAX_JSON_DEPTH)}, TOO_DEEP),
        ({"a": [1, 2.5, True, None, "x"]}, None),
        ({"a": ["x\x00"]}, NUL),
        ({"a\x00": 1}, NUL),
        ("\x00", NUL),
        (7, None),
    ],
)
def test_json_problem_counts_the_value_itself_as_level_one(value, problem):
    assert json_problem(value) == problem


# ---------------------------------------------------------------------------------------------
# Through the real server: 900 levels decode under gunicorn with the default recursion limit


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_the_real_server_answers_900_levels_without_a_500(server, agent, endpoint):
    headers = {"X-Agent-API-Key": KEY}
    raw, _ = batch_with_deep_item(agent, endpoint, 897)

    results = server.request("POST", f"/v1/agent/{agent.pk}/results", raw, headers=headers)
    again = server.request("POST", f"/v1/agent/{agent.pk}/results", raw, headers=headers)
    heartbeat = server.request("POST", f"/v1/agent/{agent.pk}/heartbeat", heartbeat_with(898), headers=headers)
    raw_report = with_deep({**AGENT_STATUS, "extra": DEEP}, 899)
    report = server.request("POST", f"/v1/agent/{agent.pk}/report", raw_report, headers=headers)

    assert results.status == 202, results.body
    assert [(r["index"], r["error"]) for r in results.json()["rejected"]] == [(1, "validation_error")]
    assert (again.status, again.json()["duplicates_skipped"]) == (202, 2)
    assert (heartbeat.status, heartbeat.json()["details"][0]["field"]) == (400, "agent_status")
    assert (report.status, report.json()["error"]) == (400, "validation_error")
    assert CheckResult.objects.count() == 2
    assert "Traceback" not in server.log()
