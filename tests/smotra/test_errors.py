"""The error contract (AGENT_API.md §2): JSON bodies for every failure on an API path."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from django.conf import settings as django_settings
from django.test import Client

from smotra.api.errors import exception_handler
from smotra.api.parsers import InvalidJSON, PayloadTooLarge, StrictJSONParser

pytestmark = pytest.mark.django_db

FAILING_URLS = "tests.smotra.failing_urls"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["request_id"] == response["X-Request-ID"]
    assert "details" not in body
    return body


@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("path", ["/api/v1/no-such-route", "/v1/no-such-route", "/no-such-route", "/api/v1/agent/"])
def test_it_answers_unknown_api_routes_with_json_404(client, method, path):
    response = getattr(client, method)(path)

    body = assert_error(response, 404, "not_found")
    assert set(body) == {"error", "message", "request_id"}


@pytest.mark.parametrize("path", ["/api/v1", "/v1"])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_it_rejects_wrong_methods_with_json_405(client, path, method):
    response = getattr(client, method)(path, data=b"{}", content_type="application/json")

    body = assert_error(response, 405, "method_not_allowed")
    assert method.upper() in body["message"]
    assert "GET" in response["Allow"]


def test_it_rejects_a_wrong_method_on_a_real_route_with_json_405(client):
    response = client.get("/api/v1/auth/token")

    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/api/v1/auth/token/"), ("post", "/auth/token/"), ("get", "/healthz/"), ("get", "/v1/")],
)
def test_it_never_redirects_trailing_slashes_on_api_paths(client, method, path):
    response = getattr(client, method)(path)

    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("path", ["/admin/no-such-page/", "/static/no-such-file.css", "/api/docs/no-such-page"])
def test_it_keeps_html_404_outside_the_api(admin_client, path):
    response = admin_client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(("path", "section"), [("/api/v1/no-such-route", "results"), ("/agent/register", "agent")])
def test_it_rejects_an_oversized_declared_body_with_json_413(client, path, section):
    too_big = django_settings.SMOTRA.results.max_body_bytes + 1

    response = client.post(path, data=b"{}", content_type="application/json", CONTENT_LENGTH=str(too_big))

    body = assert_error(response, 413, "payload_too_large")
    # Registration has the small agent limit (agent.max_body_bytes), other API paths results'.
    assert str(getattr(django_settings.SMOTRA, section).max_body_bytes) in body["message"]


def test_it_rejects_a_non_numeric_content_length_with_json_400(client):
    response = client.post("/api/v1", data=b"{}", content_type="application/json", CONTENT_LENGTH="lots")

    assert_error(response, 400, "bad_request")


@pytest.mark.urls(FAILING_URLS)
@pytest.mark.parametrize("path", ["/api/v1/test-failures/plain", "/api/v1/test-failures/api"])
def test_it_answers_unexpected_failures_with_json_500_without_internals(path):
    client = Client(raise_request_exception=False)

    response = client.get(path, HTTP_X_REQUEST_ID="failing-request")

    body = assert_error(response, 500, "internal_error")
    assert body["request_id"] == "failing-request"
    assert b"secret internals" not in response.content
    assert b"Traceback" not in response.content


@pytest.mark.urls(FAILING_URLS)
def test_it_answers_an_unreachable_database_with_503_and_retry_after():
    response = Client(raise_request_exception=False).get("/api/v1/test-failures/database")

    assert_error(response, 503, "service_unavailable")
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"username": ', id="truncated"),
        pytest.param(b"{'username': 'alice'}", id="single_quotes"),
        pytest.param(b'{"username": "alice", "password": NaN}', id="nan"),
        pytest.param(b'{"username": "alice", "password": -Infinity}', id="infinity"),
        pytest.param(b'{"username": "\xff\xfe", "password": "x"}', id="invalid_utf8"),
        pytest.param(b"[" * 20_000 + b"]" * 20_000, id="nested_too_deep"),  # under the 64 KiB login limit
        pytest.param(b'{"username": "alice"} trailing', id="trailing_garbage"),
    ],
)
def test_it_rejects_malformed_json_bodies_with_invalid_json(client, prefix, body):
    response = client.post(f"{prefix}/auth/token", data=body, content_type="application/json")

    assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_it_rejects_an_oversized_body_on_a_real_route_before_reading_it(client, prefix):
    too_big = django_settings.SMOTRA.results.max_body_bytes + 1

    response = client.post(
        f"{prefix}/auth/token", data=b'{"username": "a"}', content_type="application/json", CONTENT_LENGTH=str(too_big)
    )

    assert_error(response, 413, "payload_too_large")


# The parser on its own: a body larger than the limit is refused even without a Content-Length.


def parse(raw: bytes):
    return StrictJSONParser().parse(io.BytesIO(raw))


def test_it_refuses_a_body_beyond_the_limit_while_reading(settings):
    settings.SMOTRA = replace(settings.SMOTRA, results=replace(settings.SMOTRA.results, max_body_bytes=16))

    with pytest.raises(PayloadTooLarge):
        parse(b'{"padding": "' + b"x" * 32 + b'"}')
    assert parse(b'{"a": 1}') == {"a": 1}


def test_it_maps_parser_errors_onto_the_contract():
    invalid = exception_handler(InvalidJSON("Malformed JSON: x"), {})
    too_large = exception_handler(PayloadTooLarge(), {})

    assert invalid.status_code == 400
    assert b'"error": "invalid_json"' in invalid.content
    assert too_large.status_code == 413
    assert b'"error": "payload_too_large"' in too_large.content
