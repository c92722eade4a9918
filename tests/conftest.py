"""Shared fixtures: API clients, users with roles, and the real server in a subprocess."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.server import start_server


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def server(transactional_db, tmp_path):
    """The real server (gunicorn, 2 workers) on a free port, sharing the test database."""
    process = start_server(tmp_path)
    yield process
    process.stop()


# ---------------------------------------------------------------------------------------------
# Tenancy: two tenants, people with each role, and bearer-token clients.


@pytest.fixture
def tenant_a(db):
    from tests.factories import TenantFactory

    return TenantFactory(name="Tenant A")


@pytest.fixture
def section_a(tenant_a):
    from tests.factories import SectionFactory

    return SectionFactory(tenant=tenant_a, name="Section A")


@pytest.fixture
def tenant_b(db):
    from tests.factories import TenantFactory

    return TenantFactory(name="Tenant B")


@pytest.fixture
def section_b(tenant_b):
    from tests.factories import SectionFactory

    return SectionFactory(tenant=tenant_b, name="Section B")


def _member(username: str, tenant, role: str):
    from tests.factories import MembershipFactory, UserFactory

    user = UserFactory(username=username)
    MembershipFactory(user=user, tenant=tenant, role=role)
    return user


@pytest.fixture
def alice(tenant_a):
    """Admin of tenant A."""
    return _member("alice", tenant_a, "admin")


@pytest.fixture
def oscar(tenant_a):
    """Operator of tenant A."""
    return _member("oscar", tenant_a, "operator")


@pytest.fixture
def vera(tenant_a):
    """Viewer of tenant A."""
    return _member("vera", tenant_a, "viewer")


@pytest.fixture
def bob(tenant_b):
    """Admin of tenant B: must see and touch nothing of tenant A."""
    return _member("bob", tenant_b, "admin")


@pytest.fixture
def superuser(db):
    from tests.factories import SuperuserFactory

    return SuperuserFactory(username="root")


@pytest.fixture
def client_for():
    """``client_for(user)``: an APIClient sending ``Authorization: Bearer <token issued to user>``."""
    from tenants.tokens import token_issue

    def make(user) -> APIClient:
        client = APIClient()
        token, _expires_at = token_issue(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


@pytest.fixture
def assert_error():
    """``assert_error(response, status, code, field=None)``: the contract's error body (§2)."""

    def check(response, status: int, code: str, field: str | None = None) -> dict:
        assert response.status_code == status, response.content
        assert response["Content-Type"].startswith("application/json")
        body = response.json()
        assert body["error"] == code, body
        assert body["message"]
        assert body["request_id"]
        if field is not None:
            assert field in [detail["field"] for detail in body.get("details", [])], body
        return body

    return check


@pytest.fixture
def db_state(db):
    """``db_state()``: every row of the tenancy, endpoint and agent tables (with their tag links),
    to compare before and after a refused request."""
    from agents.models import Agent
    from endpoints.models import Endpoint, Tag, Topology, TopologyMember
    from tenants.models import AuditEvent, Membership, Section, Tenant

    models = [Tenant, Section, Membership, Tag, Endpoint, Topology, TopologyMember, Agent, AuditEvent]
    links = [Endpoint.tags.through, Agent.tags.through]

    def snapshot() -> dict:
        state = {model.__name__: sorted(map(repr, model.objects.values())) for model in models}
        state.update({link.__name__: sorted(map(repr, link.objects.values())) for link in links})
        return state

    return snapshot
