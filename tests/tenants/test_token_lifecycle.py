"""The end of a bearer token: logout (POST {prefix}/auth/logout), a password change, deactivation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import time_machine
from django.conf import settings
from django.test import RequestFactory
from rest_framework.test import APIClient

from tenants.authentication import BearerTokenAuthentication
from tenants.models import RevokedToken
from tenants.tokens import ALGORITHM, FINGERPRINT_CLAIM, ISSUER, revoked_tokens_prune, token_decode, token_issue
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NEW_PASSWORD = "a-new-and-long-password-42"


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _login(username: str, password: str) -> str:
    response = APIClient().post("/api/v1/auth/token", {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def assert_refused(response, assert_error) -> None:
    """A dead token gets the same answer as a bad one: 401 ``unauthorized`` "Invalid authentication"."""
    body = assert_error(response, 401, "unauthorized")
    assert body["message"] == "Invalid authentication"
    assert response["WWW-Authenticate"] == "Bearer"


def test_every_token_carries_its_own_jti_and_a_credentials_fingerprint(alice):
    first, second = _login("alice", PASSWORD), _login("alice", PASSWORD)
    claims = [
        jwt.decode(token, settings.SECRET_KEY, algorithms=[ALGORITHM], issuer=ISSUER) for token in (first, second)
    ]
    assert all(re.fullmatch(r"[0-9a-f]{32}", c["jti"]) for c in claims)
    assert claims[0]["jti"] != claims[1]["jti"]
    assert claims[0][FINGERPRINT_CLAIM] == claims[1][FINGERPRINT_CLAIM]
    assert alice.password not in first  # only an HMAC prefix of the hash travels, never the hash


def test_a_password_change_ends_the_users_tokens_and_a_new_one_works(alice, assert_error):
    old = _login("alice", PASSWORD)
    issued_by_cli, _ = token_issue(user=alice)
    assert _bearer(old).get("/api/v1/tenants").status_code == 200

    alice.set_password(NEW_PASSWORD)
    alice.save()

    assert_refused(_bearer(old).get("/api/v1/tenants"), assert_error)
    assert_refused(_bearer(issued_by_cli).get("/api/v1/tenants"), assert_error)
    assert _bearer(_login("alice", NEW_PASSWORD)).get("/api/v1/tenants").status_code == 200


def test_deactivation_ends_the_users_tokens(alice, assert_error):
    token = _login("alice", PASSWORD)
    alice.is_active = False
    alice.save()
    assert_refused(_bearer(token).get("/api/v1/tenants"), assert_error)
    alice.is_active = True
    alice.save()
    assert _bearer(token).get("/api/v1/tenants").status_code == 200  # the token itself was not revoked


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_logout_ends_that_token_only(alice, assert_error, prefix):
    with time_machine.travel(NOW, tick=False):
        ended, other = _login("alice", PASSWORD), _login("alice", PASSWORD)
        response = _bearer(ended).post(f"{prefix}/auth/logout")
        assert response.status_code == 204, response.content
        assert response.content == b""

        assert_refused(_bearer(ended).get(f"{prefix}/tenants"), assert_error)
        assert_refused(_bearer(ended).post(f"{prefix}/auth/logout"), assert_error)  # it cannot log out twice
        assert _bearer(other).get(f"{prefix}/tenants").status_code == 200
        revoked = RevokedToken.objects.get()
        assert revoked.jti == token_decode(ended).jti
        assert revoked.expires_at == NOW + timedelta(seconds=settings.SMOTRA.auth.jwt_expiration)


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer not-a-jwt", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA", "Basic YWxpY2U6cHc="],
    ids=["none", "no-token", "garbage", "bad-signature", "basic"],
)
def test_logout_without_a_valid_token_is_401(api_client, alice, assert_error, header):
    if header:
        api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.post("/api/v1/auth/logout")
    assert_error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"] == "Bearer"
    assert not RevokedToken.objects.exists()


def test_logout_needs_a_bearer_token_not_a_session(api_client, alice, assert_error):
    api_client.force_login(alice)
    assert api_client.get("/api/v1/tenants").status_code == 200  # the session works elsewhere
    assert_error(api_client.post("/api/v1/auth/logout"), 401, "unauthorized")
    assert not RevokedToken.objects.exists()


def test_logout_takes_no_other_method(alice, assert_error):
    assert_error(_bearer(_login("alice", PASSWORD)).get("/api/v1/auth/logout"), 405, "method_not_allowed")
    assert not RevokedToken.objects.exists()


def test_a_token_of_the_old_shape_is_refused(alice, assert_error):
    """Tokens issued before jti and the fingerprint existed: one new login after the upgrade."""
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": str(alice.pk), "iss": ISSUER, "iat": now, "exp": now + 3600}
    old_shape = jwt.encode(claims, settings.SECRET_KEY, algorithm=ALGORITHM)
    assert_refused(_bearer(old_shape).get("/api/v1/tenants"), assert_error)


@pytest.mark.parametrize(
    "claims",
    [{"jti": 7}, {"jti": ""}, {"jti": "x" * 65}, {FINGERPRINT_CLAIM: "0" * 16}, {FINGERPRINT_CLAIM: None}],
    ids=["jti-not-a-string", "empty-jti", "jti-too-long", "stale-fingerprint", "fingerprint-not-a-string"],
)
def test_a_signed_token_with_bad_new_claims_is_refused(alice, assert_error, claims):
    now = int(datetime.now(UTC).timestamp())
    real = jwt.decode(token_issue(user=alice)[0], settings.SECRET_KEY, algorithms=[ALGORITHM], issuer=ISSUER)

    def signed(**changes) -> str:
        return jwt.encode({**real, "iat": now, "exp": now + 3600, **changes}, settings.SECRET_KEY, algorithm=ALGORITHM)

    assert _bearer(signed()).get("/api/v1/tenants").status_code == 200  # the control: only `claims` differs
    assert_refused(_bearer(signed(**claims)).get("/api/v1/tenants"), assert_error)


def test_bearer_authentication_is_one_query(alice, django_assert_num_queries):
    token, _ = token_issue(user=alice)
    request = RequestFactory().get("/api/v1/tenants", HTTP_AUTHORIZATION=f"Bearer {token}")
    with django_assert_num_queries(1):
        user, claims = BearerTokenAuthentication().authenticate(request)
    assert user == alice
    assert claims.subject == str(alice.pk)


def test_pruning_forgets_only_revocations_of_expired_tokens(alice, assert_error):
    lifetime = timedelta(seconds=settings.SMOTRA.auth.jwt_expiration)
    with time_machine.travel(NOW, tick=False):
        early = _login("alice", PASSWORD)
        assert _bearer(early).post("/api/v1/auth/logout").status_code == 204
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        late = _login("alice", PASSWORD)
        assert _bearer(late).post("/api/v1/auth/logout").status_code == 204

    assert revoked_tokens_prune(now=NOW + lifetime - timedelta(seconds=1)) == 0
    with time_machine.travel(NOW + lifetime + timedelta(seconds=1), tick=False):
        assert revoked_tokens_prune() == 1
        assert list(RevokedToken.objects.values_list("jti", flat=True)) == [token_decode(late).jti]
        assert_refused(_bearer(late).get("/api/v1/tenants"), assert_error)  # still revoked
        assert_refused(_bearer(early).get("/api/v1/tenants"), assert_error)  # expired anyway
