"""Body size limits per route (BodySizeLimitMiddleware): registration, claim, heartbeat and report
bodies are small (``agent.max_body_bytes``, 64 KiB), result batches and every other API path keep
``results.max_body_bytes`` (10 MiB), non-API paths DATA_UPLOAD_MAX_MEMORY_SIZE. A refusal is a JSON
413 before authentication or parsing; a malformed chunked body is a JSON 400, never a 500."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from dataclasses import replace
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from gunicorn.http.errors import ChunkMissingTerminator, InvalidChunkSize, NoMoreData

from agents.models import AgentRegistration
from results.models import AgentStatusReport, CheckResult, Heartbeat
from smotra.api.parsers import PayloadTooLarge, StrictJSONParser
from smotra.middleware import body_limit
from tests.factories import EndpointFactory
from tests.results import agent_with_key, key_header, result_item

pytestmark = pytest.mark.django_db

PREFIXES = ["/api/v1", "/v1", ""]
AGENT_ID = "0196f3a1-0000-7000-8000-000000000001"
SMALL_ROUTES = [
    "/agent/register",
    "/agents/claim",
    "/agent/claim",
    f"/agent/{AGENT_ID}/heartbeat",
    f"/agent/{AGENT_ID}/report",
]
OVER = 65 * 1024  # one KiB over the default agent.max_body_bytes


def empty_objects(size: int) -> bytes:
    """``[{},{},...]`` of exactly ``size`` bytes (give or take one): cheap to send, costly to parse."""
    count = (size - 1) // 3
    return b"[" + b",".join([b"{}"] * count) + b"]"


def registration(**changes) -> dict:
    body = {
        "agentId": str(uuid.uuid4()),
        "claimTokenHash": hashlib.sha256(b"token").hexdigest(),
        "hostname": "probe-1",
        "agentVersion": "0.4.2",
    }
    return body | changes


def chunked(client, path: str, stream, **extra):
    """A POST whose body arrives like gunicorn hands on a chunked one: no Content-Length, a
    de-chunking ``wsgi.input`` and ``wsgi.input_terminated``."""
    return client.generic(
        "POST",
        path,
        CONTENT_TYPE="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": stream, "wsgi.input_terminated": True},
        **extra,
    )


class BrokenChunks(io.RawIOBase):
    """A ``wsgi.input`` whose read fails as gunicorn's chunked reader does on bad framing."""

    def __init__(self, error: Exception):
        self.error = error

    def read(self, size=-1):
        raise self.error


# ---------------------------------------------------------------------------------------------
# Declared lengths


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("route", SMALL_ROUTES)
def test_a_65_kib_body_on_a_small_route_is_a_json_413_before_auth_and_parsing(client, assert_error, prefix, route):
    response = client.post(f"{prefix}{route}", data=empty_objects(OVER), content_type="application/json")

    body = assert_error(response, 413, "payload_too_large")
    assert "65536" in body["message"]
    assert not AgentRegistration.objects.exists()


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("route", SMALL_ROUTES)
def test_the_declared_length_alone_is_refused(client, assert_error, prefix, route):
    response = client.post(f"{prefix}{route}", data=b"{}", content_type="application/json", CONTENT_LENGTH=str(OVER))

    assert_error(response, 413, "payload_too_large")


def test_a_body_just_under_the_limit_is_served(client):
    body = registration(padding="x" * (60 * 1024))

    response = client.post("/v1/agent/register", data=json.dumps(body), content_type="application/json")

    assert response.status_code == 201, response.content
    assert AgentRegistration.objects.count() == 1


def test_a_1_mib_result_batch_is_not_refused_for_its_size(client, section_a):
    agent = agent_with_key(section_a)
    endpoint = EndpointFactory(section=section_a)
    items = [result_item(agent.pk, endpoint.pk, "tcpconnect", padding="p" * 2500) for _ in range(420)]
    raw = json.dumps({"results": items}).encode()
    assert len(raw) > 1024 * 1024

    response = client.post(f"/v1/agent/{agent.pk}/results", data=raw, content_type="application/json", **key_header())

    assert response.status_code == 202, response.content[:300]
    assert CheckResult.objects.count() == 420


def test_the_agent_limit_follows_the_configuration(client, settings, assert_error, section_a):
    settings.SMOTRA = replace(settings.SMOTRA, agent=replace(settings.SMOTRA.agent, max_body_bytes=1024))
    agent = agent_with_key(section_a)
    flat = {"status": "healthy", "cpu_usage_percent": 1.0, "note": "n" * 2000}

    refused = client.post(f"/agent/{agent.pk}/heartbeat", data=json.dumps(flat), content_type="application/json")
    accepted = client.post(
        f"/agent/{agent.pk}/heartbeat",
        data=json.dumps({**flat, "note": "short"}),
        content_type="application/json",
        **key_header(),
    )

    assert "1024" in assert_error(refused, 413, "payload_too_large")["message"]
    assert accepted.status_code == 204
    assert Heartbeat.objects.count() == 1


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/api/v1/agent/register", "agent"),
        ("/v1/agents/claim", "agent"),
        ("/agent/claim", "agent"),
        (f"/v1/agent/{AGENT_ID}/heartbeat", "agent"),
        (f"/api/v1/agent/{{{AGENT_ID}}}/report", "agent"),
        ("/api/v1/agent/regist%65r", "agent"),  # raw, as gunicorn's worker sees it
        (f"/v1/agent/{AGENT_ID}/heart%62eat", "agent"),
        (f"/v1/agent/{AGENT_ID}/results", "results"),
        (f"/agent/{AGENT_ID}/claim-status", "results"),
        (f"/agent/{AGENT_ID}/configuration", "results"),
        ("/api/v1/auth/token", "agent"),  # unauthenticated: small too
        ("/auth/logout", "agent"),
        ("/api/v1/endpoints", "results"),
        ("/admin/login/", "forms"),
    ],
)
def test_each_route_has_its_limit(path, limit):
    expected = {
        "agent": django_settings.SMOTRA.agent.max_body_bytes,
        "results": django_settings.SMOTRA.results.max_body_bytes,
        "forms": django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
    }[limit]

    assert body_limit(path) == expected


# ---------------------------------------------------------------------------------------------
# The JSON parser applies the route's limit too


def test_the_parser_reads_the_limit_left_on_the_request():
    request = SimpleNamespace(body_limit=1024, META={})

    with pytest.raises(PayloadTooLarge, match="1024"):
        StrictJSONParser().parse(io.BytesIO(empty_objects(2048)), parser_context={"request": request})
    assert StrictJSONParser().parse(io.BytesIO(b"[{}]"), parser_context={"request": request}) == [{}]


# ---------------------------------------------------------------------------------------------
# Chunked bodies (as gunicorn hands them on; the real server's test covers the wire)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_chunked_body_over_the_limit_is_a_json_413(client, assert_error, prefix):
    response = chunked(client, f"{prefix}/agent/register", io.BytesIO(empty_objects(OVER)))

    assert_error(response, 413, "payload_too_large")
    assert not AgentRegistration.objects.exists()


def test_a_chunked_body_within_the_limit_is_served(client, section_a):
    agent = agent_with_key(section_a)
    body = json.dumps({"agent_version": "1.2.3", "is_running": True}).encode()

    response = chunked(client, f"/v1/agent/{agent.pk}/report", io.BytesIO(body), **key_header())

    assert response.status_code == 202, response.content
    assert AgentStatusReport.objects.get().agent_version == "1.2.3"


@pytest.mark.parametrize(
    "error",
    [InvalidChunkSize(b"zz"), ChunkMissingTerminator(b"xx"), NoMoreData(b""), ValueError("bad")],
    ids=["invalid_size", "missing_terminator", "no_more_data", "value_error"],
)
@pytest.mark.parametrize("path", ["/v1/agent/register", "/api/v1/auth/token", "/admin/login/"])
def test_a_malformed_chunked_body_is_a_json_400(client, assert_error, error, path):
    response = chunked(client, path, BrokenChunks(error))

    body = assert_error(response, 400, "bad_request")
    assert body["message"] == "The chunked request body is malformed."


def test_a_chunked_admin_post_over_the_form_limit_is_refused(client, settings, assert_error):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = chunked(client, "/admin/login/", io.BytesIO(b"username=" + b"a" * 2048))

    assert "1024" in assert_error(response, 413, "payload_too_large")["message"]
