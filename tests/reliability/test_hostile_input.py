"""Hostile input against the real server over raw sockets: every case is a clear 4xx, stores nothing,
and leaves the server healthy.

One server serves the whole table (a server per case would cost seconds each); every case is sent
on its own connection and checked on its own, and the failures of all cases are reported together.
A response with ``X-Request-ID`` came from Django and must carry the contract's error body; cases
marked ``gunicorn`` may instead be refused by gunicorn's HTTP parser before Django sees them (bad
header bytes, oversized headers), which is fine as long as it is a 4xx and the server stays up."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from django.conf import settings
from uuid6 import uuid7

from agents.models import Agent
from agents.services.management import agent_update
from endpoints import services
from tenants.services import Actor
from tests.reliability.conftest import CANONICAL, Stack, check_contract_error, count_rows
from tests.server import Response

pytestmark = pytest.mark.server

TABLES = (
    "results_checkresult",
    "results_heartbeat",
    "results_agentstatusreport",
    "results_unknownendpoint",
    "agents_agentregistration",
    "agents_agent",
    "endpoints_endpoint",
)
JSON = {"Content-Type": "application/json"}
DEPTH = 100_000
# Beyond what the JSON decoder accepts, yet within agent.max_body_bytes (heartbeat, registration).
SMALL_DEPTH = 5_000


@dataclass
class Reply:
    status: int
    headers: dict  # lower-case names
    body: bytes

    @property
    def from_django(self) -> bool:
        return "x-request-id" in self.headers

    def as_response(self) -> Response:
        return Response(self.status, self.headers, self.body)


def send(port: int, head: bytes, body: bytes = b"", timeout: float = 20, *, end_body: bool = False) -> Reply:
    """Write ``head`` (request line and headers, CRLF-terminated, blank line included) and ``body``
    on a fresh connection and read one response. A server that answers before reading the whole
    body may close the connection under us: what it answered is still read. ``end_body`` closes
    our side for writing after the body (the server then sees the body end early)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(body)
        if end_body:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        content = response.read()
        return Reply(response.status, {name.lower(): value for name, value in response.getheaders()}, content)


def request_head(method: str, path: str, headers: dict | None = None, *, length: int | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(body: bytes, size: int = 1 << 20) -> bytes:
    pieces = [body[start : start + size] for start in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


# ---------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Case:
    """One hostile request. ``build(ctx)`` returns the raw head and body; ``statuses`` are the
    acceptable answers; ``code`` the contract error code when Django answers (None: any code);
    ``gunicorn`` allows gunicorn's own (non-JSON) 4xx; ``check`` runs extra assertions."""

    name: str
    build: Callable
    statuses: tuple[int, ...]
    code: str | None = None
    gunicorn: bool = False
    check: Callable | None = None
    end_body: bool = False


class Ctx:
    """What the cases need: the stack, a monitored endpoint and valid request pieces."""

    def __init__(self, stack: Stack, endpoint_id):
        self.stack = stack
        self.endpoint_id = str(endpoint_id)
        self.limit = settings.SMOTRA.results.max_body_bytes
        self.max_items = settings.SMOTRA.results.max_batch_items

    def agent(self, extra: dict | None = None) -> dict:
        return {"X-Agent-API-Key": self.stack.agent_key, **(extra or {})}

    def user(self, extra: dict | None = None) -> dict:
        return {"Authorization": f"Bearer {self.stack.superuser_token}", **(extra or {})}

    def path(self, route: str, agent_id=None) -> str:
        return self.stack.agent_path(route, agent_id=agent_id)

    def post(self, route: str, body: bytes, headers: dict | None = None) -> tuple[bytes, bytes]:
        """An authenticated POST of this agent with a correct Content-Length."""
        all_headers = self.agent(JSON if headers is None else headers)
        return request_head("POST", self.path(route), all_headers, length=len(body)), body

    def item(self, **result) -> dict:
        """A valid ping result for the monitored endpoint, with ``result`` fields replaced."""
        return {
            "id": str(uuid7()),
            "agent_id": str(self.stack.agent_id),
            "endpoint_id": self.endpoint_id,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "check_type": {
                "type": "ping",
                "result": {
                    "resolved_ip": "192.0.2.80",
                    "successes": 1,
                    "failures": 0,
                    "success_latencies": [1.5],
                    "error_details": None,
                    **result,
                },
            },
        }

    def batch(self, *items: dict) -> bytes:
        return json.dumps({"results": list(items)}).encode()

    def endpoint_body(self, port: int) -> bytes:
        return json.dumps({"section_id": str(self.stack.section.pk), "address": "192.0.2.99", "port": port}).encode()

    def registration(self, hostname: str) -> bytes:
        body = {"agentId": str(uuid7()), "claimTokenHash": "a" * 64, "hostname": hostname, "agentVersion": "1"}
        return json.dumps(body).encode()

    def spelled(self, spelling: Callable[[str], str]) -> tuple[bytes, bytes]:
        agent_id = spelling(str(self.stack.agent_id))
        return request_head("GET", self.path("configuration", agent_id=agent_id), self.agent()), b""


def body_of_size(size: int) -> bytes:
    """A syntactically plausible JSON batch of exactly ``size`` bytes."""
    head, tail = b'{"results": ["', b'"]}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def nested_array(depth: int) -> bytes:
    return b'{"results": ' + b"[" * depth + b"]" * depth + b"}"


def nested_object(depth: int) -> bytes:
    return b'{"a": ' * depth + b"1" + b"}" * depth


def all_rejected(ctx: Ctx, reply: Reply) -> None:
    """A batch answered 202 whose items were all refused item by item (contract §6.4)."""
    body = json.loads(reply.body)
    assert body["accepted"] == 0 and body["rejected"], body


def same_agent_or_404(ctx: Ctx, reply: Reply) -> None:
    if reply.status == 200:
        assert json.loads(reply.body)["agent_id"] == str(ctx.stack.agent_id)


def fresh_request_id(ctx: Ctx, reply: Reply) -> None:
    assert len(reply.headers["x-request-id"]) == 36, reply.headers  # not the 1,000-character one echoed


def arabic_indic(text: str) -> str:
    return quote("".join(chr(0x660 + int(c)) if c.isdigit() else c for c in text))


def fullwidth(text: str) -> str:
    return quote("".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in text))


HEARTBEAT_FLAT = {"status": "healthy", "cpu_usage_percent": 5.0, "memory_usage_mb": 100, "system_uptime_secs": 10}


def heartbeat(**fields) -> bytes:
    return json.dumps({**HEARTBEAT_FLAT, **fields}).encode()


CASES = [
    # -- sizes
    Case(
        "declared Content-Length over the limit, body never sent",
        lambda c: (request_head("POST", c.path("results"), c.agent(JSON), length=c.limit + 1), b""),
        (413,),
        "payload_too_large",
    ),
    Case(
        "declared Content-Length over the limit on registration (no auth)",
        lambda c: (request_head("POST", f"{CANONICAL}/agent/register", JSON, length=c.limit + 1), b""),
        (413,),
        "payload_too_large",
    ),
    Case(
        "chunked body one byte over the limit",
        lambda c: (
            request_head("POST", c.path("results"), c.agent({**JSON, "Transfer-Encoding": "chunked"})),
            chunked(body_of_size(c.limit + 1)),
        ),
        (413,),
        "payload_too_large",
    ),
    Case(
        "10,000-item results batch",
        lambda c: c.post("results", c.batch(*(c.item() for _ in range(10_000)))),
        (413,),
        "payload_too_large",
    ),
    Case(f"JSON arrays nested {DEPTH} deep", lambda c: c.post("results", nested_array(DEPTH)), (400,), "invalid_json"),
    Case(
        f"JSON objects nested {SMALL_DEPTH} deep",
        lambda c: c.post("heartbeat", nested_object(SMALL_DEPTH)),
        (400,),
        "invalid_json",
    ),
    Case(
        "nested JSON on registration (no auth)",
        lambda c: (
            request_head("POST", f"{CANONICAL}/agent/register", JSON, length=2 * SMALL_DEPTH + 13),
            nested_array(SMALL_DEPTH),
        ),
        (400,),
        "invalid_json",
    ),
    # -- content types
    Case(
        "text/plain",
        lambda c: c.post("heartbeat", heartbeat(), {"Content-Type": "text/plain"}),
        (415,),
        "unsupported_media_type",
    ),
    Case(
        "multipart/form-data",
        lambda c: c.post(
            "heartbeat",
            b'--xx\r\nContent-Disposition: form-data; name="status"\r\n\r\nhealthy\r\n--xx--\r\n',
            {"Content-Type": "multipart/form-data; boundary=xx"},
        ),
        (415,),
        "unsupported_media_type",
    ),
    Case(
        "application/x-www-form-urlencoded",
        lambda c: c.post(
            "heartbeat", b"status=healthy&cpu_usage_percent=5", {"Content-Type": "application/x-www-form-urlencoded"}
        ),
        (415,),
        "unsupported_media_type",
    ),
    Case("no Content-Type at all", lambda c: c.post("heartbeat", heartbeat(), {}), (415,), "unsupported_media_type"),
    Case(
        "form body on registration (no auth)",
        lambda c: (
            request_head(
                "POST", f"{CANONICAL}/agent/register", {"Content-Type": "application/x-www-form-urlencoded"}, length=9
            ),
            b"hostname=",
        ),
        (415,),
        "unsupported_media_type",
    ),
    # -- encodings
    Case(
        "invalid UTF-8",
        lambda c: c.post("results", b'{"results": [{"id": "\xff\xfe\xc3"}]}'),
        (400,),
        "invalid_json",
    ),
    Case("UTF-16 JSON", lambda c: c.post("heartbeat", heartbeat().decode().encode("utf-16")), (400,), "invalid_json"),
    Case(
        "lone surrogate escape",
        lambda c: c.post("heartbeat", b'{"status": "\\ud800"}'),
        (400,),
        "invalid_json",
    ),
    Case(
        "lone surrogate in one result of a batch",
        lambda c: c.post("results", c.batch(c.item(), c.item(error_details={"errors": ["\ud800"]}))),
        (400,),
        "invalid_json",
    ),
    Case(
        "lone surrogate in a key 900 levels deep",
        lambda c: c.post("heartbeat", b'{"a": ' * 900 + b'{"\\udfff": 1}' + b"}" * 900),
        (400,),
        "invalid_json",
    ),
    # -- numbers
    Case("NaN", lambda c: c.post("heartbeat", b'{"cpu_usage_percent": NaN}'), (400,), "invalid_json"),
    Case("Infinity", lambda c: c.post("heartbeat", b'{"memory_usage_mb": Infinity}'), (400,), "invalid_json"),
    Case("-Infinity", lambda c: c.post("heartbeat", b'{"system_uptime_secs": -Infinity}'), (400,), "invalid_json"),
    Case(
        "NaN inside a result",
        lambda c: c.post("results", c.batch(c.item()).replace(b'"failures": 0', b'"failures": NaN')),
        (400,),
        "invalid_json",
    ),
    Case("cpu -1", lambda c: c.post("heartbeat", heartbeat(cpu_usage_percent=-1)), (400,), "validation_error"),
    Case(
        "uptime 1e300",
        lambda c: c.post("heartbeat", heartbeat(system_uptime_secs=1e300)),
        (400,),
        "validation_error",
    ),
    Case(
        "memory 10**30 (an integer beyond 64 bits)",
        lambda c: c.post("heartbeat", heartbeat(memory_usage_mb=10**30)),
        (400,),
        "validation_error",
    ),
    Case(
        "nested metrics with a negative uptime",
        lambda c: c.post(
            "heartbeat", json.dumps({"health_status": "healthy", "metrics": {"agent_uptime_secs": -5}}).encode()
        ),
        (400,),
        "validation_error",
    ),
    Case(
        "status report with a negative counter",
        lambda c: c.post("report", json.dumps({"checks_performed": -3, "is_running": True}).encode()),
        (400,),
        "validation_error",
    ),
    Case(
        "timestamp in year 0",
        lambda c: c.post("heartbeat", heartbeat(timestamp="0000-01-01T00:00:00Z")),
        (400,),
        "validation_error",
    ),
    Case(
        "results with negative and absurd values (refused item by item)",
        lambda c: c.post(
            "results",
            c.batch(c.item(successes=-1), c.item(failures=10**30), c.item(success_latencies=[1e300, -2])),
        ),
        (202,),
        check=all_rejected,
    ),
    Case(
        "endpoint port 70000",
        lambda c: (
            request_head("POST", f"{CANONICAL}/endpoints", c.user(JSON), length=len(c.endpoint_body(70000))),
            c.endpoint_body(70000),
        ),
        (400,),
        "validation_error",
    ),
    Case(
        "endpoint port -1",
        lambda c: (
            request_head("POST", f"{CANONICAL}/endpoints", c.user(JSON), length=len(c.endpoint_body(-1))),
            c.endpoint_body(-1),
        ),
        (400,),
        "validation_error",
    ),
    Case(
        "page_size 10**30",
        lambda c: (request_head("GET", f"{CANONICAL}/agents?page_size={10**30}", c.user()), b""),
        (400,),
        "validation_error",
    ),
    Case(
        "page -1",
        lambda c: (request_head("GET", f"{CANONICAL}/agents?page=-1", c.user()), b""),
        (400,),
        "validation_error",
    ),
    Case(
        "page 10**30",
        lambda c: (request_head("GET", f"{CANONICAL}/endpoints?page={10**30}", c.user()), b""),
        (400,),
        "validation_error",
    ),
    # -- shapes
    Case("empty heartbeat body", lambda c: c.post("heartbeat", b""), (400,), "invalid_json"),
    Case("empty results body", lambda c: c.post("results", b""), (400,), "invalid_json"),
    Case("empty report body", lambda c: c.post("report", b""), (400,), "invalid_json"),
    Case("heartbeat as a JSON array", lambda c: c.post("heartbeat", b"[]"), (400,), "validation_error"),
    Case("heartbeat as JSON null", lambda c: c.post("heartbeat", b"null"), (400,), "validation_error"),
    Case("heartbeat as a JSON number", lambda c: c.post("heartbeat", b"42"), (400,), "validation_error"),
    Case("report as a JSON string", lambda c: c.post("report", b'"ok"'), (400,), "validation_error"),
    Case("results as a JSON array", lambda c: c.post("results", c.batch(c.item())[12:-1]), (400,), "validation_error"),
    Case("results as an object", lambda c: c.post("results", b'{"results": {"0": {}}}'), (400,), "validation_error"),
    Case("results empty", lambda c: c.post("results", b'{"results": []}'), (400,), "empty_batch"),
    Case(
        "registration as a JSON array (no auth)",
        lambda c: (request_head("POST", f"{CANONICAL}/agent/register", JSON, length=2), b"[]"),
        (400,),
        "validation_error",
    ),
    Case("trailing garbage after JSON", lambda c: c.post("heartbeat", heartbeat() + b"}{"), (400,), "invalid_json"),
    # -- NUL characters (PostgreSQL cannot store them in text or jsonb)
    Case(
        "NUL in a heartbeat string",
        lambda c: c.post("heartbeat", heartbeat(status="ok\x00")),
        (400,),
        "validation_error",
    ),
    Case(
        "NUL in a heartbeat key",
        lambda c: c.post("heartbeat", json.dumps({**HEARTBEAT_FLAT, "x\x00": 1}).encode()),
        (400,),
        "validation_error",
    ),
    Case(
        "NUL in a status report",
        lambda c: c.post("report", json.dumps({"agent_version": "1\x00"}).encode()),
        (400,),
        "validation_error",
    ),
    Case(
        "NUL in a registration hostname (no auth)",
        lambda c: (
            request_head("POST", f"{CANONICAL}/agent/register", JSON, length=len(c.registration("a\x00b"))),
            c.registration("a\x00b"),
        ),
        (400,),
        "validation_error",
    ),
    Case(
        "NUL in a result (refused item by item)",
        lambda c: c.post("results", c.batch(c.item(error_details={"errors": ["x\x00y"]}))),
        (202,),
        check=all_rejected,
    ),
    # -- path ids in odd spellings: the same agent, or a JSON 404
    Case("id in upper case", lambda c: c.spelled(str.upper), (200,), check=same_agent_or_404),
    Case("id in braces", lambda c: c.spelled(lambda i: "{" + i + "}"), (200,), check=same_agent_or_404),
    Case("id as urn:uuid:", lambda c: c.spelled(lambda i: "urn:uuid:" + i), (200,), check=same_agent_or_404),
    Case("id without hyphens", lambda c: c.spelled(lambda i: i.replace("-", "")), (200,), check=same_agent_or_404),
    Case("id with trailing junk", lambda c: c.spelled(lambda i: i + "x"), (404,), "not_found"),
    Case("id with a trailing %00", lambda c: c.spelled(lambda i: i + "%00"), (404,), "not_found"),
    Case("id 1,000 characters long", lambda c: c.spelled(lambda i: i * 28), (404,), "not_found"),
    Case("id with Arabic-Indic digits", lambda c: c.spelled(arabic_indic), (200, 404), check=same_agent_or_404),
    Case("id with full-width digits", lambda c: c.spelled(fullwidth), (200, 404), check=same_agent_or_404),
    Case("id with an encoded slash", lambda c: c.spelled(lambda i: i[:8] + "%2F" + i[8:]), (404,), "not_found"),
    Case("id as ../", lambda c: c.spelled(lambda i: "..%2F.."), (404,), "not_found"),
    # -- headers
    Case(
        "control character in the API key",
        lambda c: (request_head("GET", c.path("configuration"), {"X-Agent-API-Key": c.stack.agent_key + "\x01"}), b""),
        (400, 401),
        "unauthorized",
        gunicorn=True,
    ),
    Case(
        "NUL in the API key",
        lambda c: (request_head("GET", c.path("configuration"), {"X-Agent-API-Key": c.stack.agent_key + "\x00"}), b""),
        (400, 401),
        "unauthorized",
        gunicorn=True,
    ),
    Case(
        "DEL in X-Request-ID",
        lambda c: (request_head("GET", c.path("configuration"), c.agent({"X-Request-ID": "ab\x7fcd"})), b""),
        (400, 200),
        gunicorn=True,
    ),
    Case(
        "bare CR inside a header value",
        lambda c: c.post("heartbeat", heartbeat(), {**JSON, "X-Request-ID": "a\rX-Injected: 1"}),
        (400,),
        gunicorn=True,
    ),
    Case(
        "Latin-1 bytes in the API key",
        lambda c: (request_head("GET", c.path("configuration"), {"X-Agent-API-Key": "smk_\xe9\xff"}), b""),
        (400, 401),
        "unauthorized",
        gunicorn=True,
    ),
    Case(
        "API key of 100,000 characters",
        lambda c: (request_head("GET", c.path("configuration"), {"X-Agent-API-Key": "k" * 100_000}), b""),
        (400, 431),
        gunicorn=True,
    ),
    Case(
        "API key of 1,000 characters",
        lambda c: (request_head("GET", c.path("configuration"), {"X-Agent-API-Key": "k" * 1000}), b""),
        (401,),
        "unauthorized",
    ),
    Case(
        "bearer token of 8,000 characters",
        lambda c: (request_head("GET", f"{CANONICAL}/agents", {"Authorization": "Bearer " + "a" * 8000}), b""),
        (401,),
        "unauthorized",
    ),
    Case(
        "X-Request-ID of 1,000 characters (replaced, not echoed)",
        lambda c: (request_head("GET", c.path("configuration"), c.agent({"X-Request-ID": "r" * 1000})), b""),
        (200,),
        check=fresh_request_id,
    ),
    Case(
        "200 headers",
        lambda c: (request_head("GET", c.path("configuration"), c.agent({f"X-Pad-{i}": "x" for i in range(200)})), b""),
        (400, 431),
        gunicorn=True,
    ),
    Case(
        "URL of 100,000 characters",
        lambda c: (request_head("GET", c.path("configuration") + "?q=" + "a" * 100_000, c.agent()), b""),
        (400, 414),
        gunicorn=True,
    ),
    Case(
        "Content-Length -1",
        lambda c: (request_head("POST", c.path("heartbeat"), c.agent({**JSON, "Content-Length": "-1"})), b""),
        (400,),
        "bad_request",
        gunicorn=True,
    ),
    Case(
        "Content-Length and Transfer-Encoding together",
        lambda c: (
            request_head("POST", c.path("heartbeat"), c.agent({**JSON, "Transfer-Encoding": "chunked"}), length=5),
            b"0\r\n\r\n",
        ),
        (400,),
        gunicorn=True,
    ),
    Case(
        "body shorter than its Content-Length",
        lambda c: (request_head("POST", c.path("heartbeat"), c.agent(JSON), length=500), heartbeat()),
        (400,),
        "invalid_json",
        end_body=True,
    ),
]


def monitored_endpoint(stack: Stack):
    """An endpoint the stack's agent monitors, so a valid result for it would be stored."""
    actor = Actor.cli()
    probes = services.tag_create(actor=actor, section=stack.section, name="probes", scope="agent")
    web = services.tag_create(actor=actor, section=stack.section, name="web", scope="endpoint")
    endpoint = services.endpoint_create(actor=actor, section=stack.section, address="192.0.2.80", tag_ids=[web.pk])
    services.topology_create(
        actor=actor, section=stack.section, name="probes-web", monitor_tag_ids=[probes.pk], target_tag_ids=[web.pk]
    )
    agent_update(actor=actor, agent=Agent.objects.get(pk=stack.agent_id), tag_ids=[probes.pk])
    return endpoint


def run_case(ctx: Ctx, case: Case) -> list[str]:
    """Send one case; the list of what went wrong (empty when it behaved)."""
    problems = []
    before = count_rows(*TABLES)
    head, body = case.build(ctx)
    try:
        reply = send(ctx.stack.server.port, head, body, end_body=case.end_body)
    except (OSError, http.client.HTTPException) as exc:
        return [f"no response: {exc!r}"]
    if reply.status not in case.statuses:
        problems.append(f"status {reply.status}, expected {case.statuses}: {reply.body[:300]!r}")
    if reply.from_django and reply.status >= 400:
        try:
            error = check_contract_error(reply.as_response())
            # What gunicorn refuses before Django sees it is its 400, now in the same error shape.
            refused_first = case.gunicorn and reply.status == 400 and error["error"] == "bad_request"
            if case.code and error["error"] != case.code and not refused_first:
                problems.append(f"error code {error['error']!r}, expected {case.code!r}")
        except (AssertionError, ValueError) as exc:
            problems.append(f"not the contract's error body: {exc}")
    elif not reply.from_django and not (case.gunicorn and 400 <= reply.status < 500):
        problems.append(f"answered without X-Request-ID (not by Django): {reply.status} {reply.body[:200]!r}")
    if not problems and case.check:
        try:
            case.check(ctx, reply)
        except (AssertionError, KeyError, ValueError) as exc:
            problems.append(f"check failed: {exc!r}")
    after = count_rows(*TABLES)
    if after != before:
        problems.append(f"rows changed: {before} -> {after}")
    health = ctx.stack.server.request("GET", "/healthz")
    if health.status != 200:
        problems.append(f"/healthz answered {health.status} afterwards")
    return problems


def test_hostile_input_is_refused_cleanly_and_stores_nothing(stack):
    started = time.monotonic()
    ctx = Ctx(stack, monitored_endpoint(stack).pk)
    assert ctx.max_items < 10_000 and ctx.limit > 2 * DEPTH  # the cases below test the limits they mean to
    assert settings.SMOTRA.agent.max_body_bytes > 7 * SMALL_DEPTH
    failures = {}
    for case in CASES:
        problems = run_case(ctx, case)
        if problems:
            failures[case.name] = problems
    # The same requests done right are accepted: the refusals above were about the hostility alone.
    controls = [
        send(stack.server.port, *ctx.post("heartbeat", heartbeat(status="\ud83d\ude00"))).status,  # a valid pair
        send(stack.server.port, *ctx.post("results", ctx.batch(ctx.item()))).status,
        send(
            stack.server.port,
            request_head("POST", ctx.path("heartbeat"), ctx.agent({**JSON, "Transfer-Encoding": "chunked"}))
            + chunked(heartbeat()),
        ).status,
    ]
    print(f"\nhostile input: {len(CASES)} cases, {len(failures)} failed, {time.monotonic() - started:.1f}s")
    assert not failures, "\n".join(f"{name}:\n  " + "\n  ".join(problems) for name, problems in failures.items())
    assert controls == [204, 202, 204], controls
    assert count_rows("results_checkresult", "results_heartbeat") == {"results_checkresult": 1, "results_heartbeat": 2}
    assert stack.server.process.poll() is None, "the server exited"
