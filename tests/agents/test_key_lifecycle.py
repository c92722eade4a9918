"""X-Agent-API-Key (contract §6) and the key lifecycle: revoke and rotate by API, admin action and CLI."""

from __future__ import annotations

import hashlib
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from agents.keys import api_key_generate, api_key_hash
from agents.models import Agent
from agents.services.onboarding import agent_claim, registration_register
from tenants.models import AuditEvent
from tenants.services import Actor
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def config_path(agent_id, prefix: str = "/v1") -> str:
    return f"{prefix}/agent/{agent_id}/configuration"


def with_key(key: str | None) -> APIClient:
    client = APIClient()
    if key is not None:
        client.credentials(HTTP_X_AGENT_API_KEY=key)
    return client


def keyed_agent(section, **fields) -> tuple[Agent, str]:
    key = api_key_generate()
    return AgentFactory(section=section, api_key_hash=api_key_hash(key), **fields), key


@pytest.fixture
def agent_and_key(section_a):
    return keyed_agent(section_a, name="probe-a")


# ---------------------------------------------------------------------------------------------
# Authentication


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_a_valid_key_authenticates(agent_and_key, prefix):
    agent, key = agent_and_key
    response = with_key(key).get(config_path(agent.pk, prefix))
    assert response.status_code == 200, response.content
    assert response.json()["agent_id"] == str(agent.pk)


def test_a_missing_key_is_401(agent_and_key, assert_error):
    agent, _ = agent_and_key
    response = with_key(None).get(config_path(agent.pk))
    body = assert_error(response, 401, "unauthorized")
    assert body["message"] == "No authentication provided"
    assert response["WWW-Authenticate"] == "X-Agent-API-Key"


@pytest.mark.parametrize("key", ["smk_wrong", "", "x" * 300], ids=["unknown", "empty", "too-long"])
def test_a_wrong_key_is_401(agent_and_key, assert_error, key):
    agent, _ = agent_and_key
    body = assert_error(with_key(key).get(config_path(agent.pk)), 401, "unauthorized")
    assert body["message"] == "Invalid authentication"


def test_a_bad_body_without_key_is_401_not_400(agent_and_key, assert_error):
    agent, _ = agent_and_key
    response = with_key(None).post(f"/v1/agent/{agent.pk}/heartbeat", b"{broken", content_type="application/json")
    assert_error(response, 401, "unauthorized")


def test_a_key_on_another_agents_path_is_403(agent_and_key, section_a, assert_error):
    _, key = agent_and_key
    other, _ = keyed_agent(section_a, name="probe-b")
    assert_error(with_key(key).get(config_path(other.pk)), 403, "forbidden")
    assert_error(with_key(key).get(config_path(uuid.uuid4())), 403, "forbidden")


def test_another_tenants_agent_key_is_403(agent_and_key, section_b, assert_error):
    agent, _ = agent_and_key
    _, foreign_key = keyed_agent(section_b, name="bravo-probe")
    assert_error(with_key(foreign_key).get(config_path(agent.pk)), 403, "forbidden")


@pytest.mark.parametrize("spelling", ["upper", "hex", "braces", "urn"])
def test_the_path_id_is_canonicalised(agent_and_key, spelling):
    agent, key = agent_and_key
    path_id = {
        "upper": str(agent.pk).upper(),
        "hex": agent.pk.hex,
        "braces": f"{{{agent.pk}}}",
        "urn": agent.pk.urn,
    }[spelling]
    response = with_key(key).get(config_path(path_id))
    assert response.status_code == 200, response.content


def test_the_key_is_stored_as_its_hash_only(agent_and_key):
    agent, key = agent_and_key
    stored = repr(Agent.objects.values().get(pk=agent.pk))
    assert key not in stored
    assert api_key_hash(key) in stored


# ---------------------------------------------------------------------------------------------
# Revocation


def revoke_url(agent, prefix: str = "/api/v1") -> str:
    return f"{prefix}/agents/{agent.pk}/revoke"


def rotate_url(agent, prefix: str = "/api/v1") -> str:
    return f"{prefix}/agents/{agent.pk}/rotate-key"


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_revocation_takes_effect_at_once(client_for, alice, agent_and_key, assert_error, prefix):
    agent, key = agent_and_key
    assert with_key(key).get(config_path(agent.pk)).status_code == 200

    response = client_for(alice).post(revoke_url(agent, prefix))

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "revoked"
    body = assert_error(with_key(key).get(config_path(agent.pk)), 401, "unauthorized")
    assert body["message"] == "Invalid authentication"
    agent.refresh_from_db()
    assert agent.revoked_at is not None and agent.api_key_hash is None
    event = AuditEvent.objects.get(action="agent.revoke")
    assert (event.actor, event.source_address, event.object_id) == (alice, "127.0.0.1", str(agent.pk))


def test_revoking_twice_is_a_conflict(client_for, alice, agent_and_key, assert_error):
    agent, _ = agent_and_key
    client = client_for(alice)
    assert client.post(revoke_url(agent)).status_code == 200
    assert_error(client.post(revoke_url(agent)), 409, "already_revoked")


def test_a_revoked_agents_undelivered_key_is_never_delivered(client_for, alice, section_a):
    agent_id = uuid.uuid4()
    registration_register(
        agent_id=agent_id,
        claim_token_hash=hashlib.sha256(b"token").hexdigest(),
        hostname="h",
        agent_version="1",
        ip_addresses=[],
        source_address=None,
    )
    agent = agent_claim(
        actor=Actor(user=alice, label="user:alice"), agent_id=agent_id, claim_token="token", section=section_a
    )
    assert client_for(alice).post(revoke_url(agent)).status_code == 200

    body = APIClient().get(f"/v1/agent/{agent_id}/claim-status").json()
    assert body["status"] == "pending_claim" and "apiKey" not in body


# ---------------------------------------------------------------------------------------------
# Rotation


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_rotation_returns_a_new_key_once_and_kills_the_old_one(client_for, alice, agent_and_key, assert_error, prefix):
    agent, old_key = agent_and_key

    response = client_for(alice).post(rotate_url(agent, prefix))

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"agentId", "apiKey"}
    assert body["agentId"] == str(agent.pk)
    new_key = body["apiKey"]
    assert new_key != old_key
    assert_error(with_key(old_key).get(config_path(agent.pk)), 401, "unauthorized")
    assert with_key(new_key).get(config_path(agent.pk)).status_code == 200

    agent.refresh_from_db()
    assert agent.api_key_hash == api_key_hash(new_key)
    assert new_key not in repr(Agent.objects.values().get(pk=agent.pk))
    # Shown once: nothing else reveals it.
    detail = client_for(alice).get(f"/api/v1/agents/{agent.pk}")
    assert new_key not in detail.content.decode()
    event = AuditEvent.objects.get(action="agent.rotate_key")
    assert (event.actor, event.source_address) == (alice, "127.0.0.1")
    assert new_key not in repr(event.details)


def test_a_revoked_agent_cannot_be_rotated(client_for, alice, agent_and_key, assert_error):
    agent, _ = agent_and_key
    client = client_for(alice)
    client.post(revoke_url(agent))
    assert_error(client.post(rotate_url(agent)), 409, "agent_revoked")
    agent.refresh_from_db()
    assert agent.api_key_hash is None


@pytest.mark.parametrize("action", ["revoke", "rotate-key"])
def test_key_actions_need_credentials(api_client, agent_and_key, assert_error, action):
    agent, key = agent_and_key
    assert_error(api_client.post(f"/api/v1/agents/{agent.pk}/{action}"), 401, "unauthorized")
    # An agent's own key is not a person's credential.
    assert_error(with_key(key).post(f"/api/v1/agents/{agent.pk}/{action}"), 401, "unauthorized")
    assert Agent.objects.get(pk=agent.pk).api_key_hash == api_key_hash(key)


@pytest.mark.parametrize("action", ["revoke", "rotate-key"])
@pytest.mark.parametrize(
    ("who", "status", "code"), [("oscar", 403, "forbidden"), ("vera", 403, "forbidden"), ("bob", 404, "not_found")]
)
def test_key_actions_need_the_tenant_admin_role(
    request, client_for, agent_and_key, db_state, assert_error, action, who, status, code
):
    agent, key = agent_and_key
    user = request.getfixturevalue(who)
    before = db_state()
    assert_error(client_for(user).post(f"/api/v1/agents/{agent.pk}/{action}"), status, code)
    assert db_state() == before
    assert with_key(key).get(config_path(agent.pk)).status_code == 200


# ---------------------------------------------------------------------------------------------
# Command line


def test_cli_revoke_agent(agent_and_key, assert_error):
    agent, key = agent_and_key
    out = StringIO()
    call_command("revoke_agent", str(agent.pk), stdout=out)
    assert str(agent.pk) in out.getvalue()
    assert_error(with_key(key).get(config_path(agent.pk)), 401, "unauthorized")
    event = AuditEvent.objects.get(action="agent.revoke")
    assert (event.actor, event.actor_label) == (None, "cli")
    with pytest.raises(CommandError, match="already revoked"):
        call_command("revoke_agent", str(agent.pk), stdout=StringIO())


def test_cli_rotate_agent_key_prints_only_the_key(agent_and_key, assert_error):
    agent, old_key = agent_and_key
    out = StringIO()
    call_command("rotate_agent_key", str(agent.pk).upper(), stdout=out)
    new_key = out.getvalue().strip()
    assert out.getvalue() == new_key + "\n"
    assert new_key.startswith("smk_") and new_key != old_key
    assert_error(with_key(old_key).get(config_path(agent.pk)), 401, "unauthorized")
    assert with_key(new_key).get(config_path(agent.pk)).status_code == 200
    assert AuditEvent.objects.get(action="agent.rotate_key").actor_label == "cli"


@pytest.mark.parametrize("command", ["revoke_agent", "rotate_agent_key"])
@pytest.mark.parametrize("agent_id", ["not-a-uuid", str(uuid.UUID(int=7))], ids=["bad-id", "unknown"])
def test_cli_key_commands_refuse_unknown_agents(db, command, agent_id):
    with pytest.raises(CommandError):
        call_command(command, agent_id, stdout=StringIO())


# ---------------------------------------------------------------------------------------------
# Admin actions


@pytest.fixture
def staff(alice, oscar):
    for user in (alice, oscar):
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return {"alice": alice, "oscar": oscar}


def test_admin_action_revokes_keys(client, staff, agent_and_key, assert_error):
    agent, key = agent_and_key
    client.force_login(staff["alice"])
    response = client.post(
        "/admin/agents/agent/", {"action": "revoke_keys", "_selected_action": [str(agent.pk)]}, follow=True
    )
    assert response.status_code == 200
    assert "key revoked" in response.content.decode()
    assert_error(with_key(key).get(config_path(agent.pk)), 401, "unauthorized")


def test_admin_action_rotates_keys_and_shows_them_once(client, staff, agent_and_key, assert_error):
    agent, old_key = agent_and_key
    client.force_login(staff["alice"])
    response = client.post("/admin/agents/agent/", {"action": "rotate_keys", "_selected_action": [str(agent.pk)]})
    assert response.status_code == 200
    page = response.content.decode()
    agent.refresh_from_db()
    new_key = next(word for word in page.replace("<", " ").replace(">", " ").split() if word.startswith("smk_"))
    assert agent.api_key_hash == api_key_hash(new_key)
    assert_error(with_key(old_key).get(config_path(agent.pk)), 401, "unauthorized")
    assert with_key(new_key).get(config_path(agent.pk)).status_code == 200
    assert new_key not in client.get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()


def test_admin_key_actions_are_not_offered_to_operators(client, staff, agent_and_key):
    agent, key = agent_and_key
    client.force_login(staff["oscar"])
    page = client.get("/admin/agents/agent/").content.decode()
    assert "revoke_keys" not in page and "rotate_keys" not in page
    client.post("/admin/agents/agent/", {"action": "revoke_keys", "_selected_action": [str(agent.pk)]})
    assert Agent.objects.get(pk=agent.pk).api_key_hash == api_key_hash(key)
