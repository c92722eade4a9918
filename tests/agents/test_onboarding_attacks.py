"""Another tenant, or anyone who only knows an agent's id, attacks onboarding through the public surface.

Each test plays the attack of the security issue as it was reproduced (key extraction through admin
filters, key theft by polling, registration hijack, lock-out of another tenant's claim, hash
disclosure, unvalidated self-endpoint address, unlock by re-registration) and asserts what the
attacker gets and what the real agent and its operator still get."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace

import pytest
from django.conf import settings as django_settings
from prometheus_client import REGISTRY

from agents.models import Agent, AgentRegistration, ClaimFailure, RegistrationState
from endpoints.models import Endpoint
from tenants.models import AuditEvent
from tests.factories import MembershipFactory, SuperuserFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "Kx7pQ2mZ" * 8
ATTACKER_TOKEN = "Zz9yXx8w" * 8
AGENT_ADDRESS = "192.0.2.10"
ATTACKER_ADDRESS = "203.0.113.66"
CHANGELIST = "/admin/agents/agentregistration/"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def register(api_client, agent_id=None, token=TOKEN, address=AGENT_ADDRESS, **fields):
    body = {
        "agentId": str(agent_id or uuid.uuid4()),
        "claimTokenHash": token_hash(token),
        "hostname": "victim-host",
        "agentVersion": "0.4.2",
        "ipAddresses": [{"ip": AGENT_ADDRESS, "iface": "eth0", "family": "ipv4", "recommended": True}],
        **fields,
    }
    return api_client.post("/v1/agent/register", body, format="json", REMOTE_ADDR=address)


def claim(client, agent_id, section, token=TOKEN, address="198.51.100.1"):
    body = {"agentId": str(agent_id), "claimToken": token, "sectionId": str(section.pk)}
    return client.post("/api/v1/agents/claim", body, format="json", REMOTE_ADDR=address)


def poll(api_client, agent_id, address=AGENT_ADDRESS):
    return api_client.get(f"/v1/agent/{agent_id}/claim-status", REMOTE_ADDR=address)


def staff(user):
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.fixture
def victim(api_client):
    """An agent of tenant A's operator registered from its own host."""
    agent_id = uuid.uuid4()
    assert register(api_client, agent_id).status_code == 201
    return agent_id


@pytest.fixture
def with_key(victim, client_for, oscar, section_a):
    """The victim claimed by tenant A's operator; its key waits for the agent's poll."""
    assert claim(client_for(oscar), victim, section_a).status_code == 200
    return victim


@pytest.fixture
def config(settings):
    def change(**agent):
        settings.SMOTRA = replace(django_settings.SMOTRA, agent=replace(django_settings.SMOTRA.agent, **agent))

    return change


# ---------------------------------------------------------------------------------------------
# 1 and 9: nothing of a registration leaks through the admin's filters or pages


@pytest.mark.parametrize("lookup", ["pending_api_key__startswith", "claim_token_hash__startswith", "source_address"])
def test_admin_filters_cannot_read_secret_columns(client, with_key, bob, superuser, lookup):
    for user in (staff(bob), superuser):
        client.force_login(user)
        response = client.get(CHANGELIST, {lookup: "smk_"})
        assert response.status_code == 400, (user, lookup, response.status_code)


def test_other_admin_lists_refuse_undeclared_lookups_too(client, with_key, alice):
    client.force_login(staff(alice))
    assert client.get("/admin/agents/agent/", {"api_key_hash__startswith": "a"}).status_code == 400
    assert client.get("/admin/agents/agent/", {"section__tenant__id__exact": str(alice.memberships.get().tenant_id)})
    assert client.get("/admin/agents/agent/", {"status": "online"}).status_code == 200  # a declared filter


def test_no_page_renders_the_token_hash_or_the_pending_key(client, with_key, alice, superuser):
    registration = AgentRegistration.objects.get(pk=with_key)
    secrets = [registration.claim_token_hash, registration.pending_api_key]
    pages = []
    for user in (superuser, staff(alice)):
        client.force_login(user)
        for url in (CHANGELIST, f"{CHANGELIST}{with_key}/change/", f"{CHANGELIST}{with_key}/claim/"):
            response = client.get(url, follow=True)
            assert response.status_code == 200, url
            pages.append(response.content.decode())
    assert any("victim-host" in page for page in pages)
    assert not any(secret in page for page in pages for secret in secrets)


# ---------------------------------------------------------------------------------------------
# 2: pending registrations are a capability, and the key goes only to the registering address


def test_tenant_members_cannot_list_or_search_pending_registrations(client, victim, bob, oscar, superuser):
    for user in (staff(bob), staff(oscar)):
        client.force_login(user)
        for query in ({}, {"q": "victim"}, {"q": str(victim)}, {"state__exact": "pending"}):
            page = client.get(CHANGELIST, query).content.decode()
            assert "victim-host" not in page and f"{victim}/claim/" not in page, (user, query)
    client.force_login(superuser)
    assert "victim-host" in client.get(CHANGELIST).content.decode()


def test_a_claimed_registration_is_listed_to_its_tenant_only(client, with_key, alice, bob):
    client.force_login(staff(alice))
    assert "victim-host" in client.get(CHANGELIST).content.decode()
    client.force_login(staff(bob))
    assert "victim-host" not in client.get(CHANGELIST).content.decode()
    assert client.get(f"{CHANGELIST}{with_key}/change/", follow=True).status_code == 200
    assert "victim-host" not in client.get(f"{CHANGELIST}{with_key}/claim/", follow=True).content.decode()


def test_the_claim_page_is_reached_by_the_id_the_operator_was_given(client, victim, oscar):
    client.force_login(staff(oscar))
    response = client.post(f"{CHANGELIST}claim/", {"agent_id": str(victim)})
    assert response.status_code == 302 and response["Location"] == f"{CHANGELIST}{victim}/claim/"
    assert "victim-host" in client.get(response["Location"]).content.decode()
    assert client.post(f"{CHANGELIST}claim/", {"agent_id": "not-an-id"}).status_code == 200  # the form says why


def test_a_stranger_polling_the_id_never_gets_the_key(api_client, with_key, client_for, alice):
    refused_before = counter("smotra_agent_key_delivery_refusals_total")
    for _ in range(20):  # the attacker polls as fast as it likes, from its own address
        answer = poll(api_client, with_key, address=ATTACKER_ADDRESS)
        assert answer.status_code == 200 and answer.json()["status"] == "pending_claim"
        assert "apiKey" not in answer.json()
    answer = poll(api_client, with_key).json()
    assert answer["status"] == "claimed" and answer["apiKey"]
    registration = AgentRegistration.objects.get(pk=with_key)
    assert (registration.delivered_to, registration.refused_deliveries) == (AGENT_ADDRESS, 20)
    assert counter("smotra_agent_key_delivery_refusals_total") - refused_before == 20
    # Audited for the agent's tenant, once per minute at most (no flood of the audit log).
    refusals = AuditEvent.objects.filter(action="agent.key_delivery_refused", object_id=str(with_key))
    assert [(event.source_address, event.tenant.name) for event in refusals] == [(ATTACKER_ADDRESS, "Tenant A")]


def test_address_binding_can_be_turned_off_for_fleets_behind_changing_addresses(api_client, with_key, config):
    config(bind_to_source_address=False)
    answer = poll(api_client, with_key, address=ATTACKER_ADDRESS).json()
    assert answer["status"] == "claimed"
    assert AgentRegistration.objects.get(pk=with_key).delivered_to == ATTACKER_ADDRESS


def test_the_agent_page_says_where_and_when_the_key_went(client, api_client, with_key, alice):
    poll(api_client, with_key, address=ATTACKER_ADDRESS)
    poll(api_client, with_key)
    client.force_login(staff(alice))
    page = client.get(f"/admin/agents/agent/{with_key}/change/").content.decode()
    assert f"to {AGENT_ADDRESS}" in page and "1 poll(s) from other addresses refused" in page


# ---------------------------------------------------------------------------------------------
# 3 and 17: only the registering address may replace the token or lift the locks


def test_a_foreign_token_from_another_address_is_a_conflict(api_client, victim, assert_error):
    before = AgentRegistration.objects.values().get(pk=victim)
    response = register(api_client, victim, token=ATTACKER_TOKEN, address=ATTACKER_ADDRESS)
    assert_error(response, 409, "registration_conflict")
    assert AgentRegistration.objects.values().get(pk=victim) == before
    event = AuditEvent.objects.get(action="agent.registration_conflict")
    assert (event.object_id, event.source_address, event.tenant) == (str(victim), ATTACKER_ADDRESS, None)


def test_the_hijack_fails_end_to_end(api_client, victim, client_for, oscar, bob, section_a, section_b):
    register(api_client, victim, token=ATTACKER_TOKEN, address=ATTACKER_ADDRESS)
    assert claim(client_for(bob), victim, section_b, token=ATTACKER_TOKEN).json()["error"] == "invalid_claim_token"
    assert claim(client_for(oscar), victim, section_a).status_code == 200
    assert Agent.objects.get(pk=victim).section == section_a
    assert poll(api_client, victim).json()["status"] == "claimed"


def test_the_same_token_from_elsewhere_changes_nothing(api_client, victim, client_for, bob, section_b):
    poll(api_client, victim)
    for _ in range(5):
        claim(client_for(bob), victim, section_b, token=ATTACKER_TOKEN)
    before = AgentRegistration.objects.values().get(pk=victim)
    response = register(api_client, victim, address=ATTACKER_ADDRESS, hostname="renamed")
    assert response.status_code == 200
    assert response.json()["expiresAt"].startswith(before["expires_at"].strftime("%Y-%m-%dT%H:%M:%S"))
    assert AgentRegistration.objects.values().get(pk=victim) == before  # no field, expiry, poll count or lock
    assert ClaimFailure.objects.filter(registration_id=victim).exists()


def test_the_agent_itself_may_replace_its_token_and_lift_the_locks(api_client, victim, client_for, bob, section_b):
    for _ in range(5):
        claim(client_for(bob), victim, section_b, token=ATTACKER_TOKEN)
    assert register(api_client, victim, token="N3wT0ken" * 8, hostname="restarted").status_code == 200
    registration = AgentRegistration.objects.get(pk=victim)
    assert (registration.hostname, registration.claim_token_hash) == ("restarted", token_hash("N3wT0ken" * 8))
    assert (registration.failed_claim_attempts, ClaimFailure.objects.count()) == (0, 0)


# ---------------------------------------------------------------------------------------------
# 8: a stranger's wrong tokens lock out the stranger, not the owner


def test_five_wrong_tokens_from_tenant_b_do_not_lock_tenant_a(
    api_client, victim, client_for, oscar, bob, section_a, section_b, assert_error
):
    attacker = client_for(bob)
    for _ in range(5):
        assert_error(claim(attacker, victim, section_b, token=ATTACKER_TOKEN), 409, "invalid_claim_token")
    assert_error(claim(attacker, victim, section_b), 409, "claim_locked")  # even B's right guess
    # The same person from another address is still locked out (per user), and so is another
    # account from the attacker's address (per address).
    assert_error(claim(attacker, victim, section_b, address="198.51.100.77"), 409, "claim_locked")
    accomplice = UserFactory(username="mallory")
    MembershipFactory(user=accomplice, tenant=section_b.tenant, role="operator")
    assert_error(claim(client_for(accomplice), victim, section_b, address="198.51.100.1"), 409, "claim_locked")
    assert claim(client_for(oscar), victim, section_a, address="192.0.2.200").status_code == 200


def test_many_claimers_lock_the_registration_itself(api_client, victim, client_for, oscar, section_a, section_b):
    for number in range(5):
        guesser = UserFactory(username=f"guesser{number}")
        MembershipFactory(user=guesser, tenant=section_b.tenant, role="operator")
        for _ in range(5):
            claim(client_for(guesser), victim, section_b, token=ATTACKER_TOKEN, address=f"198.51.100.{number + 10}")
    assert AgentRegistration.objects.get(pk=victim).failed_claim_attempts == 25
    response = claim(client_for(oscar), victim, section_a, address="192.0.2.200")
    assert response.json()["error"] == "claim_locked"
    assert register(api_client, victim).status_code == 200  # the agent, from its address, unlocks
    assert claim(client_for(oscar), victim, section_a, address="192.0.2.200").status_code == 200


def test_failed_claims_belong_to_the_agents_tenant_once_claimed(
    api_client, client, victim, client_for, oscar, alice, bob, section_a, section_b
):
    for _ in range(2):
        claim(client_for(bob), victim, section_b, token=ATTACKER_TOKEN)
    failures = AuditEvent.objects.filter(action="agent.claim_failed", object_id=str(victim))
    assert {event.tenant for event in failures} == {None}  # superusers only, until someone owns it
    claim(client_for(oscar), victim, section_a)
    assert {event.tenant for event in failures.all()} == {section_a.tenant}
    client.force_login(staff(alice))
    assert "agent.claim_failed" in client.get("/admin/tenants/auditevent/").content.decode()
    client.force_login(staff(bob))
    assert "agent.claim_failed" not in client.get("/admin/tenants/auditevent/").content.decode()


# ---------------------------------------------------------------------------------------------
# 14: the self-endpoint's address is validated like any endpoint's


@pytest.mark.parametrize("hostname", ["bad host/<img src=x>", "a b", "x/y", "<script>", ""])
def test_a_hostname_that_is_no_host_name_is_refused(api_client, hostname, assert_error):
    response = register(api_client, hostname=hostname)
    assert_error(response, 400, "validation_error", field="hostname")
    assert not AgentRegistration.objects.exists()


def test_the_self_endpoint_comes_from_a_valid_hostname_when_no_address_is_sent(
    api_client, client_for, oscar, section_a
):
    agent_id = uuid.uuid4()
    assert register(api_client, agent_id, hostname="probe-7.example.net", ipAddresses=[]).status_code == 201
    assert claim(client_for(oscar), agent_id, section_a).status_code == 200
    assert Agent.objects.get(pk=agent_id).self_endpoint.address == "probe-7.example.net"


def test_an_underscore_hostname_registers_but_makes_no_invalid_endpoint(api_client, client_for, oscar, section_a):
    agent_id = uuid.uuid4()
    assert register(api_client, agent_id, hostname="win_host", ipAddresses=[]).status_code == 201
    assert claim(client_for(oscar), agent_id, section_a).status_code == 200
    assert Agent.objects.get(pk=agent_id).self_endpoint is None
    assert not Endpoint.objects.filter(address="win_host").exists()


# ---------------------------------------------------------------------------------------------
# Discarding a pending registration


def test_an_operator_discards_with_the_claim_token(client, api_client, victim, oscar, section_a):
    client.force_login(staff(oscar))
    url = f"{CHANGELIST}{victim}/claim/"
    wrong = client.post(url, {"claim_token": ATTACKER_TOKEN, "section": str(section_a.pk), "_discard": "1"})
    assert wrong.status_code == 200 and "does not match" in wrong.content.decode()
    assert AgentRegistration.objects.filter(pk=victim).exists()
    response = client.post(url, {"claim_token": TOKEN, "section": str(section_a.pk), "_discard": "1"})
    assert response.status_code == 302
    assert poll(api_client, victim).status_code == 404
    assert AuditEvent.objects.filter(action="agent.registration_discarded", object_id=str(victim)).exists()


def test_a_superuser_discards_a_squatted_registration(client, api_client, victim):
    client.force_login(SuperuserFactory(username="root2"))
    response = client.post(CHANGELIST, {"action": "discard_selected", "_selected_action": [str(victim)]})
    assert response.status_code == 302
    assert not AgentRegistration.objects.filter(pk=victim).exists()
    assert register(api_client, victim, address=ATTACKER_ADDRESS).status_code == 201  # free for the real agent


def test_members_cannot_use_the_discard_action(client, victim, oscar):
    client.force_login(staff(oscar))
    client.post(CHANGELIST, {"action": "discard_selected", "_selected_action": [str(victim)]})
    assert AgentRegistration.objects.get(pk=victim).state == RegistrationState.PENDING
