"""POST {prefix}/agent/register (contract §3): 201/200, canonical ids, validation, rate limiting."""

from __future__ import annotations

import copy
import hashlib
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings as django_settings

from agents.models import AgentRegistration, RegistrationState
from agents.services.onboarding import agent_claim
from smotra.errors import Conflict
from tenants.services import Actor
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 1, 12, 0, 30, tzinfo=UTC)
TOKEN = "Kx7pQ2mZ" * 8  # 64 chars of [A-Za-z0-9], as the agent makes them
PREFIXES = ["/api/v1", "/v1", ""]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def agent_body(agent_id, token: str = TOKEN, **changes) -> dict:
    """What the current agent sends: camelCase, ipAddresses always present."""
    body = {
        "agentId": str(agent_id),
        "claimTokenHash": token_hash(token),
        "hostname": "probe-1",
        "agentVersion": "0.4.2",
        "ipAddresses": [
            {"ip": "192.0.2.10", "iface": "eth0", "family": "ipv4", "recommended": True},
            {"ip": "2001:db8::10", "iface": "eth0", "family": "ipv6", "recommended": False},
        ],
    }
    body.update(changes)
    return body


def as_actor(user) -> Actor:
    return Actor(user=user, label=f"user:{user.username}")


def registrations() -> list:
    return sorted(map(repr, AgentRegistration.objects.values()))


def detail_fields(body: dict) -> list[str]:
    """The fields an error names, in one spelling: ``a[0].b`` and ``a.0.b`` alike, and a nested
    serializer's ``non_field_errors`` as the field itself."""
    fields = [detail["field"] for detail in body.get("details", [])]
    return [re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", name).removesuffix(".non_field_errors") for name in fields]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_it_registers_a_new_agent(api_client, prefix):
    agent_id = uuid.uuid4()
    with time_machine.travel(NOW, tick=False):
        response = api_client.post(f"{prefix}/agent/register", agent_body(agent_id), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"status", "pollUrl", "claimUrl", "expiresAt"}
    assert body["status"] == "pending_claim"
    assert body["pollUrl"] == f"/agent/{agent_id}/claim-status"  # no prefix: the agent adds its own
    assert body["claimUrl"] == f"http://testserver/admin/agents/agentregistration/{agent_id}/claim/"
    assert body["expiresAt"].endswith("Z")
    assert parse_time(body["expiresAt"]) == NOW + timedelta(hours=24)

    registration = AgentRegistration.objects.get(pk=agent_id)
    assert registration.state == RegistrationState.PENDING
    assert registration.claim_token_hash == token_hash(TOKEN)
    assert registration.hostname == "probe-1"
    assert registration.agent_version == "0.4.2"
    assert [entry["ip"] for entry in registration.ip_addresses] == ["192.0.2.10", "2001:db8::10"]
    assert registration.source_address == "127.0.0.1"
    assert registration.registered_at == NOW
    assert registration.expires_at == NOW + timedelta(hours=24)
    assert registration.poll_count == 0


def test_claim_url_uses_the_configured_server_url(api_client, settings):
    settings.SMOTRA = replace(
        settings.SMOTRA, agent=replace(settings.SMOTRA.agent, server_url="https://smotra.example.com/")
    )
    agent_id = uuid.uuid4()
    response = api_client.post("/v1/agent/register", agent_body(agent_id), format="json")
    assert response.status_code == 201
    assert response.json()["claimUrl"] == f"https://smotra.example.com/admin/agents/agentregistration/{agent_id}/claim/"


def test_it_follows_the_configured_expiration(api_client, settings):
    settings.SMOTRA = replace(settings.SMOTRA, agent=replace(settings.SMOTRA.agent, claim_token_expiration_hours=2))
    with time_machine.travel(NOW, tick=False):
        response = api_client.post("/v1/agent/register", agent_body(uuid.uuid4()), format="json")
    assert parse_time(response.json()["expiresAt"]) == NOW + timedelta(hours=2)


def test_re_registration_replaces_the_pending_claim(api_client, section_a, oscar):
    agent_id = uuid.uuid4()
    with time_machine.travel(NOW, tick=False):
        assert api_client.post("/v1/agent/register", agent_body(agent_id), format="json").status_code == 201
        api_client.get(f"/v1/agent/{agent_id}/claim-status")
        api_client.get(f"/v1/agent/{agent_id}/claim-status")
        for _ in range(5):  # lock it with wrong tokens
            with pytest.raises(Conflict, match="does not match"):
                agent_claim(actor=as_actor(oscar), agent_id=agent_id, claim_token="x", section=section_a)
    before = AgentRegistration.objects.get(pk=agent_id)
    assert (before.poll_count, before.failed_claim_attempts) == (2, 5)
    assert before.last_polled_at is not None

    later = NOW + timedelta(hours=3)
    new_token = "Z" * 64
    changes = {
        "hostname": "probe-1-renamed",
        "agentVersion": "0.5.0",
        "ipAddresses": [{"ip": "198.51.100.7", "iface": "wlan0", "family": "ipv4", "recommended": False}],
    }
    with time_machine.travel(later, tick=False):
        response = api_client.post("/v1/agent/register", agent_body(agent_id, new_token, **changes), format="json")

    assert response.status_code == 200, response.content
    assert parse_time(response.json()["expiresAt"]) == later + timedelta(hours=24)
    after = AgentRegistration.objects.get(pk=agent_id)
    assert after.claim_token_hash == token_hash(new_token)
    assert after.hostname == "probe-1-renamed"
    assert after.agent_version == "0.5.0"
    assert after.ip_addresses == [{"ip": "198.51.100.7", "iface": "wlan0", "family": "ipv4", "recommended": False}]
    assert after.registered_at == later
    assert after.expires_at == later + timedelta(hours=24)
    assert (after.poll_count, after.last_polled_at, after.failed_claim_attempts) == (0, None, 0)
    assert AgentRegistration.objects.count() == 1

    # The restarted agent's new token claims it; the old one would not have.
    with time_machine.travel(later, tick=False):
        agent = agent_claim(actor=as_actor(oscar), agent_id=agent_id, claim_token=new_token, section=section_a)
    assert agent.hostname == "probe-1-renamed"


def test_upper_case_agent_id_is_canonicalised(api_client):
    agent_id = uuid.uuid4()
    response = api_client.post("/v1/agent/register", agent_body(str(agent_id).upper()), format="json")
    assert response.status_code == 201
    assert response.json()["pollUrl"] == f"/agent/{agent_id}/claim-status"
    assert str(AgentRegistration.objects.get().pk) == str(agent_id)

    again = api_client.post("/v1/agent/register", agent_body(agent_id), format="json")
    assert again.status_code == 200  # the same agent, whatever the spelling
    assert AgentRegistration.objects.count() == 1


def test_upper_case_hash_is_stored_lower_cased(api_client):
    agent_id = uuid.uuid4()
    response = api_client.post(
        "/v1/agent/register", agent_body(agent_id, claimTokenHash=token_hash(TOKEN).upper()), format="json"
    )
    assert response.status_code == 201
    assert AgentRegistration.objects.get().claim_token_hash == token_hash(TOKEN)


def test_a_claimed_agent_cannot_register_again(api_client, section_a, oscar, assert_error):
    agent_id = uuid.uuid4()
    api_client.post("/v1/agent/register", agent_body(agent_id), format="json")
    agent_claim(actor=as_actor(oscar), agent_id=agent_id, claim_token=TOKEN, section=section_a)
    before = registrations()

    response = api_client.post("/v1/agent/register", agent_body(agent_id, "Q" * 64), format="json")

    assert_error(response, 409, "already_claimed")
    assert registrations() == before


def test_an_agent_claimed_without_registration_row_cannot_register(api_client, section_a, assert_error):
    agent = AgentFactory(section=section_a)
    response = api_client.post("/v1/agent/register", agent_body(agent.pk), format="json")
    assert_error(response, 409, "already_claimed")
    assert AgentRegistration.objects.count() == 0


def _without(key):
    def change(body):
        del body[key]

    return change


def _set(key, value):
    def change(body):
        body[key] = value

    return change


def _address(index, **fields):
    def change(body):
        body["ipAddresses"][index].update(fields)

    return change


BAD_INPUTS = [
    ("missing-agentId", _without("agentId"), "agentId"),
    ("missing-hash", _without("claimTokenHash"), "claimTokenHash"),
    ("missing-hostname", _without("hostname"), "hostname"),
    ("missing-version", _without("agentVersion"), "agentVersion"),
    ("bad-uuid", _set("agentId", "not-a-uuid"), "agentId"),
    ("null-agentId", _set("agentId", None), "agentId"),
    ("hash-63-chars", _set("claimTokenHash", "a" * 63), "claimTokenHash"),
    ("hash-65-chars", _set("claimTokenHash", "a" * 65), "claimTokenHash"),
    ("hash-not-hex", _set("claimTokenHash", "g" * 64), "claimTokenHash"),
    ("hash-plaintext", _set("claimTokenHash", TOKEN), "claimTokenHash"),
    ("empty-hostname", _set("hostname", ""), "hostname"),
    ("empty-version", _set("agentVersion", ""), "agentVersion"),
    ("two-recommended", _address(1, recommended=True), "ipAddresses"),
    ("bad-ip", _address(0, ip="999.1.1.1"), "ipAddresses[0].ip"),
    ("ip-is-a-name", _address(1, ip="example.org"), "ipAddresses[1].ip"),
    ("family-mismatch-v4", _address(0, family="ipv6"), "ipAddresses[0].family"),
    ("family-mismatch-v6", _address(1, family="ipv4"), "ipAddresses[1].family"),
    ("unknown-family", _address(0, family="ipx"), "ipAddresses[0].family"),
    ("empty-iface", _address(0, iface=""), "ipAddresses[0].iface"),
    ("addresses-not-a-list", _set("ipAddresses", "192.0.2.1"), "ipAddresses"),
]


@pytest.mark.parametrize(("change", "field"), [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
def test_it_rejects_bad_input(api_client, db_state, assert_error, change, field):
    body = copy.deepcopy(agent_body(uuid.uuid4()))
    change(body)
    before = (db_state(), registrations())

    response = api_client.post("/v1/agent/register", body, format="json")

    body = assert_error(response, 400, "validation_error")
    assert field in detail_fields(body), body
    assert (db_state(), registrations()) == before


def test_it_rejects_a_body_that_is_not_json(api_client, assert_error):
    response = api_client.post("/v1/agent/register", b"{nope", content_type="application/json")
    assert_error(response, 400, "invalid_json")
    assert AgentRegistration.objects.count() == 0


@pytest.mark.parametrize("addresses", [None, []], ids=["null", "empty"])
def test_ip_addresses_may_be_null_or_empty(api_client, addresses):
    response = api_client.post("/v1/agent/register", agent_body(uuid.uuid4(), ipAddresses=addresses), format="json")
    assert response.status_code == 201, response.content
    assert AgentRegistration.objects.get().ip_addresses == []


def test_unknown_keys_are_ignored(api_client):
    body = agent_body(uuid.uuid4(), osType="linux", extra={"nested": True})
    body["ipAddresses"][0]["mac"] = "00:11:22:33:44:55"
    response = api_client.post("/v1/agent/register", body, format="json")
    assert response.status_code == 201, response.content
    assert "osType" not in repr(AgentRegistration.objects.values().get())


def test_the_original_readme_request_works_at_the_root(api_client):
    """The original README's curl example, verbatim but for a real SHA-256 (no ipAddresses)."""
    body = {
        "agentId": "019c1234-5678-7abc-def0-123456789abc",
        "claimTokenHash": token_hash("original-token-from-agent"),
        "hostname": "prod-web-01",
        "agentVersion": "1.0.0",
    }
    response = api_client.post("/agent/register", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["pollUrl"] == "/agent/019c1234-5678-7abc-def0-123456789abc/claim-status"
    registration = AgentRegistration.objects.get()
    assert (registration.hostname, registration.ip_addresses) == ("prod-web-01", [])


# ---------------------------------------------------------------------------------------------
# Rate limiting per source address (shared by workers through the database)


@pytest.fixture
def limit_of_three(settings):
    settings.SMOTRA = replace(settings.SMOTRA, agent=replace(settings.SMOTRA.agent, registration_rate_limit=3))
    return 3


def test_registrations_are_rate_limited_per_address(api_client, limit_of_three, assert_error):
    with time_machine.travel(NOW, tick=False):  # 30 s into the minute
        for _ in range(limit_of_three):
            assert api_client.post("/v1/agent/register", agent_body(uuid.uuid4()), format="json").status_code == 201
        refused_id = uuid.uuid4()
        response = api_client.post("/v1/agent/register", agent_body(refused_id), format="json")

        assert_error(response, 429, "rate_limited")
        assert response["Retry-After"] == "30"
        assert not AgentRegistration.objects.filter(pk=refused_id).exists()
        # Another address is counted on its own.
        other = api_client.post("/v1/agent/register", agent_body(uuid.uuid4()), format="json", REMOTE_ADDR="192.0.2.99")
        assert other.status_code == 201

    with time_machine.travel(NOW + timedelta(seconds=30), tick=False):  # the next minute
        response = api_client.post("/v1/agent/register", agent_body(refused_id), format="json")
        assert response.status_code == 201, response.content


def test_re_registrations_count_too(api_client, limit_of_three, assert_error):
    agent_id = uuid.uuid4()
    with time_machine.travel(NOW, tick=False):
        statuses = [
            api_client.post("/v1/agent/register", agent_body(agent_id), format="json").status_code for _ in range(4)
        ]
    assert statuses == [201, 200, 200, 429]


def test_the_default_limit_fits_a_fleet_behind_one_nat():
    assert django_settings.SMOTRA.agent.registration_rate_limit >= 60
