"""POST {prefix}/auth/token and the bearer authentication of the management API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
import time_machine
from django.conf import settings
from rest_framework.test import APIClient

from tenants.tokens import ALGORITHM, ISSUER, token_issue
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_it_issues_a_token_that_authenticates(api_client, alice, prefix):
    with time_machine.travel(NOW, tick=False):
        response = api_client.post(f"{prefix}/auth/token", {"username": "alice", "password": PASSWORD}, format="json")
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_at"}
        assert body["token_type"] == "Bearer"
        expected_expiry = NOW + timedelta(seconds=settings.SMOTRA.auth.jwt_expiration)
        assert datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")) == expected_expiry

        listing = _bearer(body["access_token"]).get(f"{prefix}/tenants")
        assert listing.status_code == 200
        assert [tenant["name"] for tenant in listing.json()["tenants"]] == ["Tenant A"]


def test_the_token_names_the_user_and_is_signed_with_the_jwt_secret(api_client, alice):
    response = api_client.post("/api/v1/auth/token", {"username": "alice", "password": PASSWORD}, format="json")
    claims = jwt.decode(response.json()["access_token"], settings.SECRET_KEY, algorithms=[ALGORITHM], issuer=ISSUER)
    assert claims["sub"] == str(alice.pk)
    assert settings.SMOTRA.auth.jwt_secret == settings.SECRET_KEY


@pytest.mark.parametrize(
    ("username", "password", "status", "code"),
    [
        ("alice", "wrong", 401, "unauthorized"),
        ("nobody", PASSWORD, 401, "unauthorized"),
        ("inactive", PASSWORD, 401, "unauthorized"),
        ("alice", "", 400, "validation_error"),
    ],
    ids=["wrong-password", "unknown-user", "inactive-user", "empty-password"],
)
def test_it_rejects_bad_credentials(api_client, alice, db_state, assert_error, username, password, status, code):
    UserFactory(username="inactive", is_active=False)
    before = db_state()
    response = api_client.post("/api/v1/auth/token", {"username": username, "password": password}, format="json")
    body = assert_error(response, status, code)
    assert "access_token" not in body
    assert db_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [({"password": PASSWORD}, "username"), ({"username": "alice"}, "password"), ([], "body")],
    ids=["no-username", "no-password", "not-an-object"],
)
def test_it_rejects_incomplete_token_requests(api_client, alice, assert_error, body, field):
    response = api_client.post("/api/v1/auth/token", body, format="json")
    assert_error(response, 400, "validation_error", field=field)


def test_it_rejects_malformed_json(api_client, alice, assert_error):
    response = api_client.post("/api/v1/auth/token", "{not json", content_type="application/json")
    assert_error(response, 400, "invalid_json")


def test_it_answers_401_without_credentials(api_client, assert_error):
    response = api_client.get("/api/v1/tenants")
    assert_error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer not-a-jwt", "Bearer a b", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA"],
    ids=["no-token", "garbage", "two-parts", "bad-signature"],
)
def test_it_rejects_malformed_bearer_tokens(api_client, alice, assert_error, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.get("/api/v1/tenants")
    assert_error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"] == "Bearer"


def test_it_rejects_an_expired_token(alice, assert_error):
    with time_machine.travel(NOW, tick=False):
        token, expires_at = token_issue(user=alice)
    lifetime = settings.SMOTRA.auth.jwt_expiration
    with time_machine.travel(NOW + timedelta(seconds=lifetime - 1), tick=False):
        assert _bearer(token).get("/api/v1/tenants").status_code == 200
    with time_machine.travel(expires_at + timedelta(seconds=1), tick=False):
        assert_error(_bearer(token).get("/api/v1/tenants"), 401, "unauthorized")


def test_it_rejects_a_token_signed_with_another_secret(alice, assert_error):
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": str(alice.pk), "iss": ISSUER, "iat": now, "exp": now + 3600}
    forged = jwt.encode(claims, "not-the-server-secret-" + "x" * 32, algorithm=ALGORITHM)
    assert_error(_bearer(forged).get("/api/v1/tenants"), 401, "unauthorized")


def test_it_rejects_an_unsigned_token(alice, assert_error):
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": str(alice.pk), "iss": ISSUER, "iat": now, "exp": now + 3600}
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert_error(_bearer(unsigned).get("/api/v1/tenants"), 401, "unauthorized")


@pytest.mark.parametrize(
    "claims",
    [{"iss": "someone-else"}, {"exp": None}, {"sub": None}],
    ids=["wrong-issuer", "no-expiry", "no-subject"],
)
def test_it_rejects_tokens_with_bad_claims(alice, assert_error, claims):
    now = int(datetime.now(UTC).timestamp())
    payload = {"sub": str(alice.pk), "iss": ISSUER, "iat": now, "exp": now + 3600, **claims}
    payload = {key: value for key, value in payload.items() if value is not None}
    token = jwt.encode(payload, settings.SECRET_KEY, algorithm=ALGORITHM)
    assert_error(_bearer(token).get("/api/v1/tenants"), 401, "unauthorized")


def test_it_rejects_the_token_of_a_deactivated_or_deleted_user(alice, oscar, assert_error):
    alice_token, _ = token_issue(user=alice)
    oscar_token, _ = token_issue(user=oscar)
    alice.is_active = False
    alice.save()
    oscar.delete()
    assert_error(_bearer(alice_token).get("/api/v1/tenants"), 401, "unauthorized")
    assert_error(_bearer(oscar_token).get("/api/v1/tenants"), 401, "unauthorized")
