"""X-Request-ID: echoed when sane, else a fresh UUIDv7; on every response, error body and log line."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

from smotra.logging import JsonFormatter, RequestIdFilter

pytestmark = pytest.mark.django_db

SANE_IDS = [
    "0190b1d4-7c3e-7a4b-9c1d-2e3f4a5b6c7d",
    "req-42",
    "trace:abc.DEF_123",
    "a" * 128,
]
INSANE_IDS = {
    "too_long": "a" * 129,
    "control_char": "abc\x01def",
    "newline": "abc\ndef",
    "space": "has space",
    "leading_dash": "-starts-with-dash",
    "non_ascii": "réquest",
    "quote": 'a"b',
    "empty": "",
}


def assert_fresh_uuid7(value: str) -> None:
    parsed = uuid.UUID(value)
    assert parsed.version == 7
    assert str(parsed) == value


@pytest.mark.parametrize("request_id", SANE_IDS)
def test_it_echoes_a_sane_request_id(client, request_id):
    response = client.get("/healthz/live", HTTP_X_REQUEST_ID=request_id)

    assert response.status_code == 200
    assert response["X-Request-ID"] == request_id


@pytest.mark.parametrize("request_id", INSANE_IDS.values(), ids=INSANE_IDS.keys())
def test_it_replaces_an_insane_request_id_with_a_uuid7(client, request_id):
    response = client.get("/healthz/live", HTTP_X_REQUEST_ID=request_id)

    assert response.status_code == 200
    assert response["X-Request-ID"] != request_id
    assert_fresh_uuid7(response["X-Request-ID"])


def test_it_mints_a_new_uuid7_per_request_without_a_header(client):
    first = client.get("/healthz/live")["X-Request-ID"]
    second = client.get("/healthz/live")["X-Request-ID"]

    assert_fresh_uuid7(first)
    assert_fresh_uuid7(second)
    assert first != second


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/no-such-route", 404),
        ("get", "/v1/no-such-route", 404),
        ("get", "/no-such-route", 404),
        ("post", "/api/v1", 405),
        ("post", "/healthz", 405),
    ],
)
def test_it_puts_the_request_id_in_error_responses(client, method, path, status):
    response = getattr(client, method)(path, HTTP_X_REQUEST_ID="caller-chosen-id")

    assert response.status_code == status
    assert response["X-Request-ID"] == "caller-chosen-id"
    assert response.json()["request_id"] == "caller-chosen-id"


def test_it_puts_the_minted_request_id_in_error_bodies(client):
    response = client.get("/api/v1/no-such-route", HTTP_X_REQUEST_ID="bad id")

    assert response.status_code == 404
    assert_fresh_uuid7(response["X-Request-ID"])
    assert response.json()["request_id"] == response["X-Request-ID"]


def test_it_sets_the_request_id_on_non_api_responses(client):
    response = client.get("/static/no-such-file.css", HTTP_X_REQUEST_ID="static-404")

    assert response.status_code == 404
    assert response["X-Request-ID"] == "static-404"


@pytest.fixture
def access_log():
    """The access log as the server writes it: JSON lines through the request-id filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("smotra.access")
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


def test_it_writes_the_request_id_into_the_access_log(client, access_log):
    client.get("/healthz/live?api_key=sk_live_secret_value", HTTP_X_REQUEST_ID="logged-request-id")

    lines = [json.loads(line) for line in access_log.getvalue().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == "logged-request-id"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/healthz/live", 200)
    assert line["duration_ms"] >= 0
    assert line["client"] == "127.0.0.1"
    assert "sk_live_secret_value" not in access_log.getvalue()
