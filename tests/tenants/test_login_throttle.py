"""Login throttling (django-axes) of POST {prefix}/auth/token and the admin login: per username and,
separately, per client address; state in the database, so every worker shares it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LIMIT = 5
COOL_OFF = timedelta(minutes=15)
ADDRESS = "198.51.100.7"


def token_request(username: str, password: str, address: str = ADDRESS, **extra):
    body = {"username": username, "password": password}
    return APIClient().post("/api/v1/auth/token", body, format="json", REMOTE_ADDR=address, **extra)


def fail(times: int, username: str = "alice", address: str = ADDRESS) -> None:
    """``times`` wrong passwords, all below the limit (each a plain 401)."""
    for _ in range(times):
        assert token_request(username, "wrong", address).status_code == 401


def assert_locked(response, assert_error) -> None:
    """The API's lockout: the contract's JSON 429 with Retry-After (never axes' own page), no token."""
    body = assert_error(response, 429, "rate_limited")
    assert response["Retry-After"] == str(int(COOL_OFF.total_seconds()))
    assert "access_token" not in body


def test_the_settings_are_the_documented_ones():
    assert settings.AXES_ENABLED
    assert (settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME) == (LIMIT, COOL_OFF)
    assert settings.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]
    assert settings.AXES_HANDLER == "axes.handlers.database.AxesDatabaseHandler"


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_five_wrong_passwords_lock_the_username_even_for_the_right_one(alice, assert_error, prefix):
    def attempt(password: str):
        body = {"username": "alice", "password": password}
        return APIClient().post(f"{prefix}/auth/token", body, format="json", REMOTE_ADDR=ADDRESS)

    for _ in range(LIMIT - 1):
        assert attempt("wrong").status_code == 401
    assert_locked(attempt("wrong"), assert_error)  # the fifth failure starts the lock
    assert_locked(attempt(PASSWORD), assert_error)


def test_the_lockout_is_json_even_for_ajax_clients(alice, assert_error):
    fail(LIMIT - 1)
    assert_locked(token_request("alice", "wrong", HTTP_X_REQUESTED_WITH="XMLHttpRequest"), assert_error)
    assert_locked(token_request("alice", PASSWORD, HTTP_X_REQUESTED_WITH="XMLHttpRequest"), assert_error)


def test_a_username_is_locked_whatever_address_guesses_it(alice, bob, assert_error):
    for index in range(LIMIT):
        token_request("alice", "wrong", f"203.0.113.{index + 1}")
    assert_locked(token_request("alice", PASSWORD, "203.0.113.99"), assert_error)
    assert token_request("bob", PASSWORD, "203.0.113.99").status_code == 200  # that address is not locked


def test_an_address_is_locked_whatever_username_it_tries(alice, bob, assert_error):
    for index in range(LIMIT - 1):
        assert token_request(f"nobody{index}", "wrong").status_code == 401
    assert_locked(token_request("alice", "wrong"), assert_error)
    assert_locked(token_request("bob", PASSWORD), assert_error)
    assert token_request("bob", PASSWORD, "198.51.100.8").status_code == 200  # bob himself is not locked


def test_it_works_again_after_the_cool_off(alice, assert_error):
    with time_machine.travel(NOW, tick=False):
        fail(LIMIT - 1)
        assert_locked(token_request("alice", "wrong"), assert_error)
    with time_machine.travel(NOW + COOL_OFF - timedelta(seconds=1), tick=False):
        assert_locked(token_request("alice", PASSWORD), assert_error)  # and this refusal restarts the cool-off
    with time_machine.travel(NOW + COOL_OFF + timedelta(seconds=1), tick=False):
        assert_locked(token_request("alice", PASSWORD), assert_error)
    with time_machine.travel(NOW + 2 * COOL_OFF + timedelta(seconds=2), tick=False):
        assert token_request("alice", PASSWORD).status_code == 200


def test_failures_older_than_the_cool_off_are_forgotten(alice, assert_error):
    with time_machine.travel(NOW, tick=False):
        fail(LIMIT - 1)
    with time_machine.travel(NOW + COOL_OFF + timedelta(seconds=1), tick=False):
        fail(LIMIT - 1)
        assert token_request("alice", PASSWORD).status_code == 200


def test_a_success_does_not_clear_the_count(alice, assert_error):
    """Otherwise one valid account would let a sprayer reset its address's count at will."""
    fail(LIMIT - 1)
    assert token_request("alice", PASSWORD).status_code == 200
    assert_locked(token_request("alice", "wrong"), assert_error)


def test_failures_are_recorded_in_the_database_for_every_worker(alice):
    fail(3)
    attempt = AccessAttempt.objects.get()
    assert (attempt.username, attempt.ip_address, attempt.failures_since_start) == ("alice", ADDRESS, 3)
    assert PASSWORD not in attempt.post_data and "wrong" not in attempt.post_data


def test_the_address_is_the_one_client_address_resolves_behind_a_trusted_proxy(bob, assert_error, settings):
    server = dataclasses.replace(settings.SMOTRA.server, trusted_proxies=("10.0.0.0/8",))
    settings.SMOTRA = dataclasses.replace(settings.SMOTRA, server=server)

    def via_proxy(username: str, password: str, client_ip: str):
        return token_request(username, password, "10.1.2.3", HTTP_X_FORWARDED_FOR=f"{client_ip}, 10.9.9.9")

    for index in range(LIMIT - 1):
        assert via_proxy(f"nobody{index}", "wrong", "192.0.2.10").status_code == 401
    assert_locked(via_proxy("nobody", "wrong", "192.0.2.10"), assert_error)
    assert_locked(via_proxy("bob", PASSWORD, "192.0.2.10"), assert_error)
    assert via_proxy("bob", PASSWORD, "192.0.2.11").status_code == 200  # same proxy, another client
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"192.0.2.10"}


# ---------------------------------------------------------------------------------------------
# The admin login (Django's test Client skips the CSRF check).


def admin_login(client: Client, username: str, password: str, address: str = ADDRESS):
    return client.post(
        "/admin/login/", {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address
    )


def assert_admin_locked(response) -> None:
    assert response.status_code == 429
    assert b"too many login attempts" in response.content


def test_the_admin_login_works(superuser):
    client = Client()
    response = admin_login(client, "root", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_the_admin_login_locks_after_five_failures(superuser):
    client = Client()
    for _ in range(LIMIT - 1):
        assert admin_login(client, "root", "wrong").status_code == 200  # the form again, with its error
    assert_admin_locked(admin_login(client, "root", "wrong"))
    assert_admin_locked(admin_login(client, "root", PASSWORD))
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still sent to the login page
    assert AccessAttempt.objects.get(username="root").failures_since_start == LIMIT + 1


def test_the_admin_and_the_api_share_one_count(superuser, assert_error):
    client = Client()
    for _ in range(LIMIT - 2):
        admin_login(client, "root", "wrong")
    fail(1, username="root")
    assert_locked(token_request("root", "wrong"), assert_error)
    assert_admin_locked(admin_login(client, "root", PASSWORD))
    assert_locked(token_request("root", PASSWORD), assert_error)
