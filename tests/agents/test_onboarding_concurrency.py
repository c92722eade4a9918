"""Races over real connections to the real server (2 gunicorn workers x 8 threads).

Exactly-once key delivery under 20 simultaneous polls, and exactly one winner of two simultaneous
claims. On PostgreSQL every request has its own connection and transactions really overlap; on
SQLite writers queue behind one lock, and the guarantees must hold just the same."""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from agents.keys import api_key_hash
from agents.models import Agent, AgentRegistration, RegistrationState
from agents.services.onboarding import agent_claim
from endpoints.models import Endpoint
from tenants.models import AuditEvent
from tenants.services import Actor
from tests.factories import PASSWORD, MembershipFactory, SectionFactory, TenantFactory, UserFactory
from tests.server import Response, start_server

pytestmark = pytest.mark.server

TOKEN = "Kx7pQ2mZ" * 8
POLLERS = 20
ROUNDS = 3


@pytest.fixture
def live(transactional_db, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  drain_delay: 0s\n")
    server = start_server(tmp_path, env={"SMOTRA_WORKERS": "2", "SMOTRA_THREADS": "8"}, args=["--config", str(config)])
    yield server
    server.stop()


@pytest.fixture
def section(transactional_db):
    tenant = TenantFactory(name="Race Tenant")
    section = SectionFactory(tenant=tenant, name="race")
    for username in ("racer1", "racer2"):
        MembershipFactory(user=UserFactory(username=username), tenant=tenant, role="operator")
    return section


def register(live) -> uuid.UUID:
    agent_id = uuid.uuid4()
    body = {
        "agentId": str(agent_id),
        "claimTokenHash": hashlib.sha256(TOKEN.encode()).hexdigest(),
        "hostname": f"racer-{agent_id.hex[:6]}",
        "agentVersion": "0.4.2",
        "ipAddresses": [{"ip": "192.0.2.50", "iface": "eth0", "family": "ipv4", "recommended": True}],
    }
    response = live.request("POST", "/v1/agent/register", body)
    assert response.status == 201, response.body
    return agent_id


def all_at_once(live, requests: list[tuple]) -> list[Response]:
    """Send ``(method, path, body, headers)`` requests at the same instant: every thread connects
    first, then a barrier releases them together, so the race is in the server, not in connecting."""
    barrier = threading.Barrier(len(requests))

    def send(request) -> Response:
        method, path, body, headers = request
        connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
        try:
            connection.connect()
            data = json.dumps(body).encode() if body is not None else None
            all_headers = {"Content-Type": "application/json", **headers} if data else dict(headers)
            barrier.wait(timeout=30)
            connection.request(method, path, body=data, headers=all_headers)
            response = connection.getresponse()
            return Response(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(send, requests))


def warm_up(live) -> None:
    """Have both workers import everything first, so the race is about the database, not startup."""
    all_at_once(live, [("GET", "/healthz/ready", None, {})] * 16)


def test_concurrent_polls_deliver_the_key_exactly_once(live, section):
    warm_up(live)
    user = UserFactory(username="racer1")
    for _ in range(ROUNDS):
        agent_id = register(live)
        agent_claim(actor=Actor(user=user, label="user:racer1"), agent_id=agent_id, claim_token=TOKEN, section=section)
        poll = f"/v1/agent/{agent_id}/claim-status"

        responses = all_at_once(live, [("GET", poll, None, {})] * POLLERS)

        assert [response.status for response in responses] == [200] * POLLERS, live.log()[-3000:]
        bodies = [response.json() for response in responses]
        delivered = [body for body in bodies if body["status"] == "claimed"]
        assert len(delivered) == 1, bodies
        assert {body["status"] for body in bodies} == {"claimed", "pending_claim"}
        assert all("apiKey" not in body for body in bodies if body["status"] != "claimed")

        key = delivered[0]["apiKey"]
        assert Agent.objects.get(pk=agent_id).api_key_hash == api_key_hash(key)
        registration = AgentRegistration.objects.get(pk=agent_id)
        assert (registration.state, registration.pending_api_key) == (RegistrationState.DELIVERED, None)
        assert AuditEvent.objects.filter(action="agent.key_delivered", object_id=str(agent_id)).count() == 1
        config = live.request("GET", f"/v1/agent/{agent_id}/configuration", headers={"X-Agent-API-Key": key})
        assert config.status == 200


def test_concurrent_claims_have_exactly_one_winner(live, section):
    warm_up(live)
    bearers = []
    for username in ("racer1", "racer2"):
        token = live.request("POST", "/v1/auth/token", {"username": username, "password": PASSWORD})
        assert token.status == 200, token.body
        bearers.append({"Authorization": f"Bearer {token.json()['access_token']}"})

    for _ in range(ROUNDS):
        agent_id = register(live)
        body = {"agentId": str(agent_id), "claimToken": TOKEN, "sectionId": str(section.pk)}
        paths = ["/v1/agents/claim", "/api/v1/agent/claim"]

        requests = [("POST", path, body, headers) for headers, path in zip(bearers, paths, strict=True)]
        responses = all_at_once(live, requests)

        outcomes = Counter(
            "ok" if response.status == 200 else f"{response.status} {response.json()['error']}"
            for response in responses
        )
        assert outcomes == Counter({"ok": 1, "409 already_claimed": 1}), [r.body for r in responses]
        assert Agent.objects.filter(pk=agent_id).count() == 1
        assert Endpoint.objects.filter(self_agent__pk=agent_id).count() == 1
        assert Endpoint.objects.filter(section=section).count() == Agent.objects.filter(section=section).count()
        assert AuditEvent.objects.filter(action="agent.claim", object_id=str(agent_id)).count() == 1
        registration = AgentRegistration.objects.get(pk=agent_id)
        assert registration.failed_claim_attempts == 0
        assert Agent.objects.get(pk=agent_id).api_key_hash == api_key_hash(registration.pending_api_key)
