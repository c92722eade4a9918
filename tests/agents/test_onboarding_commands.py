"""manage.py claim_agent, list_pending_agents [--json] and purge_registrations [--older-than]."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from agents.keys import api_key_hash
from agents.models import MAX_FAILED_CLAIMS, Agent, AgentRegistration, RegistrationState
from agents.services.onboarding import agent_claim, registration_register
from tenants.models import AuditEvent
from tenants.services import Actor

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)
TOKEN = "Kx7pQ2mZ" * 8


def register(hostname: str = "probe-1", token: str = TOKEN, ip_addresses=None) -> uuid.UUID:
    agent_id = uuid.uuid4()
    registration_register(
        agent_id=agent_id,
        claim_token_hash=hashlib.sha256(token.encode()).hexdigest(),
        hostname=hostname,
        agent_version="0.4.2",
        ip_addresses=ip_addresses or [{"ip": "192.0.2.10", "iface": "eth0", "family": "ipv4", "recommended": True}],
        source_address="127.0.0.1",  # where the test client polls from: the agent's own host
    )
    return agent_id


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# claim_agent


def test_claim_agent_claims_with_the_same_service(section_a, api_client):
    agent_id = register()
    output = run("claim_agent", str(agent_id), "--token", TOKEN, "--section", str(section_a.pk), "--name", "edge")

    assert f"Claimed {agent_id} as 'edge'" in output
    agent = Agent.objects.get(pk=agent_id)
    assert (agent.section, agent.name, agent.claimed_by) == (section_a, "edge", None)
    event = AuditEvent.objects.get(action="agent.claim")
    assert (event.actor, event.actor_label) == (None, "cli")

    poll = api_client.get(f"/v1/agent/{agent_id}/claim-status").json()
    assert poll["status"] == "claimed" and api_key_hash(poll["apiKey"]) == agent.api_key_hash


def test_claim_agent_names_the_agent_after_its_hostname_by_default(section_a):
    agent_id = register(hostname="db-7")
    run("claim_agent", str(agent_id).upper(), "--token", TOKEN, "--section", str(section_a.pk))
    assert Agent.objects.get(pk=agent_id).name == "db-7"


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("wrong-token", "invalid_claim_token"),
        ("unknown-agent", "claim_not_found"),
        ("bad-agent-id", "not a valid agent id"),
        ("unknown-section", "No section"),
        ("bad-section-id", "not a valid section id"),
    ],
)
def test_claim_agent_refusals_are_command_errors_with_the_code(section_a, case, code):
    agent_id = register()
    args = {"agent": str(agent_id), "token": TOKEN, "section": str(section_a.pk)}
    args.update(
        {
            "wrong-token": {"token": "Z" * 64},
            "unknown-agent": {"agent": str(uuid.uuid4())},
            "bad-agent-id": {"agent": "agent-1"},
            "unknown-section": {"section": str(uuid.uuid4())},
            "bad-section-id": {"section": "42"},
        }[case]
    )
    with pytest.raises(CommandError, match=code):
        run("claim_agent", args["agent"], "--token", args["token"], "--section", args["section"])
    assert not Agent.objects.exists()


def test_claim_agent_reports_the_lock(section_a):
    agent_id = register()
    for _ in range(5):
        with pytest.raises(CommandError, match="invalid_claim_token"):
            run("claim_agent", str(agent_id), "--token", "nope", "--section", str(section_a.pk))
    with pytest.raises(CommandError, match="claim_locked"):
        run("claim_agent", str(agent_id), "--token", TOKEN, "--section", str(section_a.pk))


# ---------------------------------------------------------------------------------------------
# list_pending_agents


@pytest.fixture
def pending_world(section_a, oscar):
    """An expired registration, a locked one, a fresh one and a claimed one (not pending)."""
    with time_machine.travel(NOW - timedelta(days=2), tick=False):
        stale = register(hostname="stale-host")
    with time_machine.travel(NOW, tick=False):
        locked = register(hostname="locked-host")
        AgentRegistration.objects.filter(pk=locked).update(failed_claim_attempts=MAX_FAILED_CLAIMS)
        fresh = register(hostname="fresh-host", ip_addresses=[{"ip": "2001:db8::1", "iface": "e", "family": "ipv6"}])
        claimed = register(hostname="claimed-host")
        agent_claim(actor=Actor(user=oscar, label="user:oscar"), agent_id=claimed, claim_token=TOKEN, section=section_a)
    return {"stale": stale, "locked": locked, "fresh": fresh, "claimed": claimed}


def test_list_pending_agents_as_text(pending_world):
    with time_machine.travel(NOW, tick=False):
        output = run("list_pending_agents")
    lines = output.strip().splitlines()
    assert len(lines) == 3
    by_host = {line.split()[1]: line for line in lines}
    assert set(by_host) == {"stale-host", "locked-host", "fresh-host"}
    assert by_host["stale-host"].startswith(str(pending_world["stale"]))
    assert by_host["stale-host"].endswith("expired")
    assert by_host["locked-host"].endswith("locked")
    assert "2001:db8::1" in by_host["fresh-host"]
    assert not by_host["fresh-host"].endswith(("expired", "locked"))


def test_list_pending_agents_as_json(pending_world):
    with time_machine.travel(NOW, tick=False):
        rows = json.loads(run("list_pending_agents", "--json"))
    by_id = {row["agent_id"]: row for row in rows}
    assert set(by_id) == {str(pending_world[name]) for name in ("stale", "locked", "fresh")}
    fresh = by_id[str(pending_world["fresh"])]
    assert fresh == {
        "agent_id": str(pending_world["fresh"]),
        "hostname": "fresh-host",
        "agent_version": "0.4.2",
        "ip_addresses": ["2001:db8::1"],
        "registered_at": "2025-03-20T12:00:00+00:00",
        "expires_at": "2025-03-21T12:00:00+00:00",
        "expired": False,
        "locked": False,
        "polls": 0,
    }
    assert by_id[str(pending_world["stale"])]["expired"] is True
    assert by_id[str(pending_world["locked"])]["locked"] is True


def test_list_pending_agents_when_there_are_none(db):
    assert run("list_pending_agents").strip() == "No pending agents."
    assert json.loads(run("list_pending_agents", "--json")) == []


# ---------------------------------------------------------------------------------------------
# purge_registrations


@pytest.fixture
def purge_world(section_a, oscar):
    actor = Actor(user=oscar, label="user:oscar")
    world = {}
    with time_machine.travel(NOW - timedelta(days=9), tick=False):  # expired 8 days ago
        world["long_expired"] = register(hostname="long-expired")
        world["old_undelivered"] = register(hostname="old-undelivered")
        agent_claim(actor=actor, agent_id=world["old_undelivered"], claim_token=TOKEN, section=section_a)
    with time_machine.travel(NOW - timedelta(days=3), tick=False):  # expired 2 days ago
        world["recently_expired"] = register(hostname="recently-expired")
        world["recent_undelivered"] = register(hostname="recent-undelivered")
        agent_claim(actor=actor, agent_id=world["recent_undelivered"], claim_token=TOKEN, section=section_a)
    with time_machine.travel(NOW, tick=False):
        world["active"] = register(hostname="active")
    return world


def test_purge_registrations_forgets_what_is_stale(api_client, purge_world, assert_error):
    with time_machine.travel(NOW, tick=False):
        output = run("purge_registrations")
        assert "Purged 1 expired registration(s), cleared 1 undelivered key(s)" in output

        # The long-expired agent learns it must register again (404 is final for it).
        response = api_client.get(f"/v1/agent/{purge_world['long_expired']}/claim-status")
        assert_error(response, 404, "not_found")
        for kept in ("recently_expired", "active"):
            assert api_client.get(f"/v1/agent/{purge_world[kept]}/claim-status").status_code == 200

        # A key nobody picked up for a week is gone; the agent exists and its state is kept.
        old = AgentRegistration.objects.get(pk=purge_world["old_undelivered"])
        assert (old.pending_api_key, old.state) == (None, RegistrationState.CLAIMED)
        body = api_client.get(f"/v1/agent/{purge_world['old_undelivered']}/claim-status").json()
        assert body["status"] == "pending_claim" and "apiKey" not in body
        assert Agent.objects.filter(pk=purge_world["old_undelivered"]).exists()

        recent = api_client.get(f"/v1/agent/{purge_world['recent_undelivered']}/claim-status").json()
        assert recent["status"] == "claimed"

        assert "Purged 0 expired registration(s), cleared 0 undelivered key(s)" in run("purge_registrations")


def test_purge_registrations_with_a_shorter_age(purge_world):
    with time_machine.travel(NOW, tick=False):
        output = run("purge_registrations", "--older-than", "1d")
    assert "Purged 2 expired registration(s), cleared 2 undelivered key(s)" in output
    assert set(AgentRegistration.objects.values_list("hostname", flat=True)) == {
        "active",
        "old-undelivered",
        "recent-undelivered",
    }


def test_purge_registrations_accepts_go_durations(purge_world):
    with time_machine.travel(NOW, tick=False):
        output = run("purge_registrations", "--older-than", "72h")
    assert "Purged 1 expired registration(s)" in output


@pytest.mark.parametrize("age", ["soon", "-1d", "7 days"])
def test_purge_registrations_refuses_a_bad_age(db, age):
    with pytest.raises(CommandError):
        run("purge_registrations", "--older-than", age)
