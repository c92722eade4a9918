"""Fixtures of the admin tests: the two hand-built tenants of ``build_world`` and staff users of A.

They replace the project-wide ``alice``/``oscar``/``vera`` (members made by factories) inside
tests/admin: here every user is a staff account, as the admin needs."""

from __future__ import annotations

import pytest

from tenants.models import Role, User
from tests.admin import build_world, staff_user


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def oscar(world):
    """Operator of tenant A."""
    return staff_user("oscar", world.a.tenant, Role.OPERATOR)


@pytest.fixture
def alice(world):
    """Admin of tenant A."""
    return staff_user("alice", world.a.tenant, Role.ADMIN)


@pytest.fixture
def vera(world):
    """Viewer of tenant A."""
    return staff_user("vera", world.a.tenant, Role.VIEWER)


@pytest.fixture
def root(db):
    return User.objects.create(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def login(client):
    def as_user(user):
        client.force_login(user)
        return client

    return as_user
