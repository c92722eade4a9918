"""``manage.py issue_token USERNAME``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_it_prints_only_a_token_that_authenticates(alice):
    out, err = StringIO(), StringIO()
    call_command("issue_token", "alice", stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    token = lines[0]
    assert token.count(".") == 2 and " " not in token
    assert err.getvalue() == ""

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.get("/api/v1/tenants")
    assert response.status_code == 200
    assert [tenant["name"] for tenant in response.json()["tenants"]] == ["Tenant A"]


def test_it_rejects_an_unknown_user(db):
    out = StringIO()
    with pytest.raises(CommandError, match="nobody"):
        call_command("issue_token", "nobody", stdout=out)
    assert out.getvalue() == ""


def test_it_rejects_an_inactive_user(alice):
    alice.is_active = False
    alice.save()
    with pytest.raises(CommandError):
        call_command("issue_token", "alice", stdout=StringIO())
