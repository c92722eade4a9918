"""Shared fixtures for the reliability tests: the real server (`manage.py serve`, gunicorn) with data
made through its own API.

- ``server_factory(env=None, config="")``: start another server on a free loopback port against the
  test database (``drain_delay: 0s`` so stopping is quick; ``config`` is extra YAML appended to the
  config file, ``env`` extra environment such as ``SMOTRA_WORKERS``). Every server it started is
  stopped at teardown. Needs ``transactional_db``: the server only sees committed rows.
- ``stack``: a running server with one tenant and section, a superuser and an admin of the tenant
  (bearer tokens from ``POST /api/v1/auth/token``) and an agent onboarded through the API
  (register, claim, poll) with its ``X-Agent-API-Key``. See :class:`Stack`.
- ``onboard(server, section, token)``: onboard another agent the same way; returns ``(agent_id, key)``.
- ``row_counts(*tables)``: ``{table: rows}`` read from the test process, to prove nothing was stored.
- ``assert_contract_error(response, status=None)``: the contract's error body (AGENT_API.md §2) on a
  :class:`tests.server.Response`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

import pytest
from django.db import connection

from tests.server import Response, ServerProcess, start_server

CANONICAL = "/api/v1"
CLAIM_TOKEN = "Rl9vQ3bX" * 8  # an agent's 64-character claim token
ERROR_KEYS = {"error", "message", "request_id"}


@dataclass
class Stack:
    """A running server and the objects made through its API.

    ``superuser_token`` may do anything; ``admin_token`` belongs to ``admin``, an admin of ``tenant``
    only. ``agent_id``/``agent_key`` are a claimed agent of ``section`` that has collected its key."""

    server: ServerProcess
    tenant: object
    section: object
    superuser: object
    superuser_token: str
    admin: object
    admin_token: str
    agent_id: uuid.UUID
    agent_key: str

    def user_headers(self, token: str | None = None) -> dict:
        return {"Authorization": f"Bearer {token or self.superuser_token}"}

    def agent_headers(self, key: str | None = None) -> dict:
        return {"X-Agent-API-Key": key or self.agent_key}

    def agent_path(self, route: str, prefix: str = CANONICAL, agent_id=None) -> str:
        """``{prefix}/agent/{id}/{route}`` for this agent (or ``agent_id``, any spelling)."""
        return f"{prefix}/agent/{agent_id or self.agent_id}/{route}"

    def agent_call(self, method: str, route: str, body=None, **kwargs) -> Response:
        """An authenticated request of this agent on its own canonical path."""
        headers = {**self.agent_headers(), **kwargs.pop("headers", {})}
        return self.server.request(method, self.agent_path(route), body, headers=headers, **kwargs)


@pytest.fixture
def server_factory(transactional_db, tmp_path):
    started: list[ServerProcess] = []

    def start(env: dict | None = None, config: str = "") -> ServerProcess:
        config_path = tmp_path / f"config-{len(started)}.yaml"
        config_path.write_text("server:\n  drain_delay: 0s\n" + config)
        server = start_server(tmp_path, env=env, args=["--config", str(config_path)])
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def login(server: ServerProcess, username: str) -> str:
    """A bearer token for ``username`` (password ``tests.factories.PASSWORD``) through the API."""
    from tests.factories import PASSWORD

    response = server.request("POST", f"{CANONICAL}/auth/token", {"username": username, "password": PASSWORD})
    assert response.status == 200, response.body
    return response.json()["access_token"]


def onboard_agent(server: ServerProcess, section, token: str, *, hostname: str = "probe") -> tuple[uuid.UUID, str]:
    """Register an agent, claim it into ``section`` with ``token`` and collect its key, all over HTTP."""
    agent_id = uuid.uuid4()
    registration = {
        "agentId": str(agent_id),
        "claimTokenHash": hashlib.sha256(CLAIM_TOKEN.encode()).hexdigest(),
        "hostname": hostname,
        "agentVersion": "0.4.2",
        "ipAddresses": [{"ip": "192.0.2.44", "iface": "eth0", "family": "ipv4", "recommended": True}],
    }
    response = server.request("POST", f"{CANONICAL}/agent/register", registration)
    assert response.status == 201, response.body
    claim = {"agentId": str(agent_id), "claimToken": CLAIM_TOKEN, "sectionId": str(section.pk), "name": hostname}
    response = server.request("POST", f"{CANONICAL}/agents/claim", claim, headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200, response.body
    poll = server.request("GET", f"{CANONICAL}/agent/{agent_id}/claim-status").json()
    assert poll["status"] == "claimed", poll
    return agent_id, poll["apiKey"]


@pytest.fixture
def onboard():
    return onboard_agent


@pytest.fixture
def stack(server_factory) -> Stack:
    from tests.factories import MembershipFactory, SectionFactory, SuperuserFactory, TenantFactory, UserFactory

    tenant = TenantFactory(name="Reliability")
    section = SectionFactory(tenant=tenant, name="edge")
    superuser = SuperuserFactory(username="rootfuzz")
    admin = UserFactory(username="relyadmin")
    MembershipFactory(user=admin, tenant=tenant, role="admin")
    server = server_factory()
    superuser_token = login(server, superuser.username)
    agent_id, key = onboard_agent(server, section, superuser_token)
    return Stack(
        server=server,
        tenant=tenant,
        section=section,
        superuser=superuser,
        superuser_token=superuser_token,
        admin=admin,
        admin_token=login(server, admin.username),
        agent_id=agent_id,
        agent_key=key,
    )


def count_rows(*tables: str) -> dict[str, int]:
    with connection.cursor() as cursor:
        counts = {}
        for table in tables:
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


@pytest.fixture
def row_counts():
    return count_rows


def check_contract_error(response: Response, status: int | None = None) -> dict:
    """Assert the contract's error body: JSON with error, message and request_id; returns it."""
    if status is not None:
        assert response.status == status, (response.status, response.body[:500])
    content_type = {key.lower(): value for key, value in response.headers.items()}.get("content-type", "")
    assert content_type.startswith("application/json"), (response.status, content_type, response.body[:500])
    body = json.loads(response.body)
    assert isinstance(body, dict) and set(body) >= ERROR_KEYS, body
    assert isinstance(body["error"], str) and body["error"] and body["message"] and body["request_id"], body
    return body


@pytest.fixture
def assert_contract_error():
    return check_contract_error
