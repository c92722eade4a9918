"""CORS for the one configured origin (`cors.origin`); none at all when it is empty."""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.test import Client

from smotra.config import load_config

pytestmark = pytest.mark.django_db

ORIGIN = "https://ui.example.com"
REQUIRED_HEADERS = ("Content-Type", "Authorization", "X-Request-ID", "X-Agent-API-Key")


def client_with_cors(settings, env: dict[str, str]) -> Client:
    """A client whose middleware sees `cors` as loaded from ``env`` (the middleware reads it once,
    when the client builds its handler on the first request)."""
    settings.SMOTRA = replace(settings.SMOTRA, cors=load_config(env=env).cors)
    return Client()


def client_with_origin(settings, origin: str) -> Client:
    return client_with_cors(settings, {"SMOTRA_CORS_ORIGIN": origin})


def preflight(client: Client, path: str = "/api/v1", origin: str = ORIGIN):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, x-agent-api-key",
    )


def cors_headers(response) -> dict[str, str]:
    return {name: value for name, value in response.items() if name.lower().startswith("access-control-")}


def test_it_sends_no_cors_headers_when_smotra_cors_origin_is_unset(settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./config.yaml either
    client = client_with_cors(settings, {})

    get = client.get("/api/v1", HTTP_ORIGIN=ORIGIN)
    options = preflight(client)

    assert get.status_code == 200
    assert cors_headers(get) == {}
    assert options.status_code == 200
    assert cors_headers(options) == {}


def test_it_sends_no_cors_headers_when_the_origin_is_empty(settings):
    client = client_with_origin(settings, "")

    assert cors_headers(preflight(client)) == {}


@pytest.mark.parametrize("path", ["/api/v1", "/v1/agent/register", "/agents/claim", "/healthz"])
def test_it_answers_a_preflight_from_the_configured_origin_with_204(settings, path):
    client = client_with_origin(settings, ORIGIN)

    response = preflight(client, path)

    assert response.status_code == 204
    assert response.content == b""
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    allowed_headers = [header.strip().lower() for header in response["Access-Control-Allow-Headers"].split(",")]
    for header in REQUIRED_HEADERS:
        assert header.lower() in allowed_headers
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "Origin" in response["Vary"]
    assert response["X-Request-ID"]


def test_it_adds_cors_headers_to_actual_requests_from_the_configured_origin(settings):
    client = client_with_origin(settings, ORIGIN)

    ok = client.get("/api/v1", HTTP_ORIGIN=ORIGIN)
    not_found = client.get("/api/v1/no-such-route", HTTP_ORIGIN=ORIGIN)

    assert ok.status_code == 200
    assert ok["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-Request-ID" in ok["Access-Control-Expose-Headers"]
    assert not_found.status_code == 404
    assert not_found["Access-Control-Allow-Origin"] == ORIGIN


@pytest.mark.parametrize("origin", ["https://evil.example.com", "https://ui.example.com.evil.net", "null"])
def test_it_gives_other_origins_no_cors_headers(settings, origin):
    client = client_with_origin(settings, ORIGIN)

    options = preflight(client, origin=origin)
    get = client.get("/api/v1", HTTP_ORIGIN=origin)

    assert options.status_code != 204
    assert cors_headers(options) == {}
    assert get.status_code == 200
    assert cors_headers(get) == {}


def test_it_treats_options_without_a_request_method_as_an_ordinary_request(settings):
    client = client_with_origin(settings, ORIGIN)

    response = client.options("/api/v1", HTTP_ORIGIN=ORIGIN)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "Access-Control-Allow-Methods" not in response
