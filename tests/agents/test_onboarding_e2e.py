"""The agent's onboarding replayed over HTTP against the real server (`manage.py serve`, gunicorn).

register -> poll (pending, pollIn 5) -> poll (pollIn 10) -> a person claims with a bearer token ->
poll (the key) -> poll (pending) -> an authenticated request with the key. At /v1 (the agent's
default), /api/v1 (canonical) and the root with the original README's request bodies."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from agents.keys import api_key_hash
from agents.models import Agent, AgentRegistration, RegistrationState
from tests.factories import PASSWORD, MembershipFactory, SectionFactory, TenantFactory, UserFactory
from tests.server import start_server

pytestmark = pytest.mark.server

TOKEN = "Kx7pQ2mZ" * 8  # what the agent generated and printed


@pytest.fixture
def live(transactional_db, tmp_path):
    """The real server; drain_delay 0 so that stopping it costs nothing."""
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  drain_delay: 0s\n")
    server = start_server(tmp_path, args=["--config", str(config)])
    yield server
    server.stop()


@pytest.fixture
def operator_section(transactional_db):
    """A section and an operator of its tenant, who logs in with a password."""
    tenant = TenantFactory(name="Field Tenant")
    section = SectionFactory(tenant=tenant, name="edge")
    MembershipFactory(user=UserFactory(username="fieldop"), tenant=tenant, role="operator")
    return section


def agent_registration(agent_id) -> dict:
    """What the current Rust agent sends."""
    return {
        "agentId": str(agent_id),
        "claimTokenHash": hashlib.sha256(TOKEN.encode()).hexdigest(),
        "hostname": "probe-e2e",
        "agentVersion": "0.4.2",
        "ipAddresses": [
            {"ip": "192.0.2.44", "iface": "eth0", "family": "ipv4", "recommended": True},
            {"ip": "fe80::1", "iface": "eth0", "family": "ipv6", "recommended": False},
        ],
    }


def readme_registration(agent_id) -> dict:
    """The original README's curl body (no ipAddresses), with a real SHA-256."""
    return {
        "agentId": str(agent_id),
        "claimTokenHash": hashlib.sha256(TOKEN.encode()).hexdigest(),
        "hostname": "prod-web-01",
        "agentVersion": "1.0.0",
    }


FLOWS = {
    # prefix, registration body, claim path, whether the claim names the agent
    "v1": ("/v1", agent_registration, "/agents/claim", None),
    "api-v1": ("/api/v1", agent_registration, "/agent/claim", "probe via api"),
    "root-readme": ("", readme_registration, "/agents/claim", "Production Web Server 01"),
}


@pytest.mark.parametrize("flow", list(FLOWS))
def test_the_agent_onboards_over_http(live, operator_section, flow):
    prefix, registration_body, claim_path, name = FLOWS[flow]
    agent_id = uuid.uuid4() if flow != "root-readme" else uuid.UUID("019c1234-5678-7abc-def0-123456789abc")

    # 1. The agent registers itself.
    response = live.request("POST", f"{prefix}/agent/register", registration_body(agent_id))
    assert response.status == 201, response.body
    registered = response.json()
    assert registered["status"] == "pending_claim"
    assert registered["claimUrl"] == f"{live.url}/admin/agents/agentregistration/{agent_id}/claim/"
    poll_url = prefix + registered["pollUrl"]  # the agent concatenates its base URL and pollUrl
    if flow == "root-readme":
        poll_url = f"/agents/{agent_id}/claim-status"  # the README's spelling
    login = live.request("GET", registered["claimUrl"].removeprefix(live.url))  # urllib follows the redirect
    assert login.status == 200 and b'id="login-form"' in login.body  # the claim page, after a login

    # 2. It polls, backing off as told.
    first, second = (live.request("GET", poll_url) for _ in range(2))
    assert (first.status, second.status) == (200, 200)
    assert first.json() == {"status": "pending_claim", "expiresAt": registered["expiresAt"], "pollIn": 5}
    assert second.json() == {"status": "pending_claim", "expiresAt": registered["expiresAt"], "pollIn": 10}

    # 3. A person claims it through the API with a bearer token.
    token = live.request("POST", f"{prefix}/auth/token", {"username": "fieldop", "password": PASSWORD})
    assert token.status == 200, token.body
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    claim = {"agentId": str(agent_id), "claimToken": TOKEN, "sectionId": str(operator_section.pk)}
    if name:
        claim["name"] = name
    claimed = live.request("POST", prefix + claim_path, claim, headers=bearer)
    assert claimed.status == 200, claimed.body
    assert claimed.json() == {
        "agentId": str(agent_id),
        "status": "claimed",
        "message": "Agent claimed successfully. API key will be delivered on next poll.",
    }

    # 4. The next poll delivers the key, once.
    delivery = live.request("GET", poll_url)
    assert delivery.status == 200
    delivered = delivery.json()
    assert set(delivered) == {"status", "apiKey", "configUrl"}
    assert delivered["status"] == "claimed"
    assert delivered["configUrl"] == f"/agent/{agent_id}/configuration"
    after = live.request("GET", poll_url)
    assert after.status == 200
    assert after.json()["status"] == "pending_claim" and "apiKey" not in after.json()

    # 5. The key authenticates the agent.
    config = live.request("GET", prefix + delivered["configUrl"], headers={"X-Agent-API-Key": delivered["apiKey"]})
    assert config.status == 200, config.body
    document = config.json()
    assert document["agent_id"] == str(agent_id)
    assert document["agent_name"] == (name or "probe-e2e")
    assert document["server"]["api_key"] is None
    refused = live.request("GET", prefix + delivered["configUrl"], headers={"X-Agent-API-Key": "smk_nope"})
    assert refused.status == 401

    agent = Agent.objects.get(pk=agent_id)
    assert agent.section == operator_section
    assert agent.api_key_hash == api_key_hash(delivered["apiKey"])
    assert AgentRegistration.objects.get(pk=agent_id).state == RegistrationState.DELIVERED
    expected_address = "192.0.2.44" if flow != "root-readme" else "prod-web-01"
    assert agent.self_endpoint.address == expected_address
