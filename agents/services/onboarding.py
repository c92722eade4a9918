"""Agent onboarding (contract §3-§5): self-registration, claim status with one-time key delivery, claims."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from agents.keys import api_key_display_prefix, api_key_generate, api_key_hash, claim_token_hash, hashes_match
from agents.models import MAX_FAILED_CLAIMS, Agent, AgentRegistration, RegistrationState
from agents.services.versions import config_versions_bump
from endpoints.models import Endpoint
from smotra import metrics
from smotra.errors import Conflict, DomainError, NotFound, RateLimited
from smotra.ratelimit import ratelimit_hit
from tenants.models import Role, Section
from tenants.services import Actor, audit_record, authorize


@dataclass(frozen=True)
class ClaimStatus:
    """What a poll answers: pending (with backoff) or claimed with the key (exactly once)."""

    status: str
    expires_at: datetime | None = None
    poll_in: int | None = None
    api_key: str | None = None


# ---------------------------------------------------------------------------------------------
# Registration


def registration_register(
    *,
    agent_id,
    claim_token_hash: str,
    hostname: str,
    agent_version: str,
    ip_addresses: list[dict],
    source_address: str | None,
) -> tuple[AgentRegistration, bool]:
    """Register (201) or re-register (200) an unclaimed agent. Re-registering replaces the token
    hash and details and restarts the expiry, the poll counter and the failed-claim lock."""
    _registration_rate_limit(source_address)
    now = timezone.now()
    fields = {
        "claim_token_hash": claim_token_hash.lower(),
        "hostname": hostname,
        "agent_version": agent_version,
        "ip_addresses": ip_addresses,
        "source_address": source_address,
        "registered_at": now,
        "expires_at": now + timedelta(hours=settings.SMOTRA.agent.claim_token_expiration_hours),
        "poll_count": 0,
        "last_polled_at": None,
        "failed_claim_attempts": 0,
    }
    try:
        registration, created = _register_row(agent_id, fields)
    except IntegrityError:  # a concurrent first registration of the same id won the insert
        registration, created = _register_row(agent_id, fields)
    metrics.REGISTRATIONS.labels("created" if created else "renewed").inc()
    return registration, created


@transaction.atomic
def _register_row(agent_id, fields: dict) -> tuple[AgentRegistration, bool]:
    if Agent.objects.filter(pk=agent_id).exists():
        raise _already_claimed()
    registration = AgentRegistration.objects.select_for_update().filter(pk=agent_id).first()
    if registration is None:
        return AgentRegistration.objects.create(agent_id=agent_id, **fields), True
    if registration.state != RegistrationState.PENDING:
        raise _already_claimed()
    for name, value in fields.items():
        setattr(registration, name, value)
    registration.save()
    return registration, False


def _already_claimed() -> Conflict:
    metrics.REGISTRATIONS.labels("already_claimed").inc()
    return Conflict("This agent is already claimed.", code="already_claimed")


def _registration_rate_limit(source_address: str | None) -> None:
    verdict = ratelimit_hit(
        f"register:{source_address or 'unknown'}", limit=settings.SMOTRA.agent.registration_rate_limit
    )
    if not verdict.allowed:
        metrics.REGISTRATIONS.labels("rate_limited").inc()
        raise RateLimited("Too many registrations from this address; retry later.", retry_after=verdict.retry_after)


# ---------------------------------------------------------------------------------------------
# Claim status


def poll_interval(polls_so_far: int) -> int:
    agent = settings.SMOTRA.agent
    return min(
        agent.claim_poll_initial_interval_secs + polls_so_far * agent.claim_poll_increment_secs,
        agent.claim_poll_max_interval_secs,
    )


def registration_poll(*, agent_id, source_address: str | None = None) -> ClaimStatus:
    """Answer a claim-status poll. A claimed agent's key is handed out by the first poll only:
    the UPDATE that clears it is conditional on it still being there, so of concurrent polls
    exactly one changes a row and delivers; the others answer pending."""
    registration = AgentRegistration.objects.filter(pk=agent_id).first()
    if registration is None:
        raise NotFound("No registration for this agent.")
    if registration.pending_api_key and _deliver(registration, source_address):
        return ClaimStatus(status="claimed", api_key=registration.pending_api_key)
    AgentRegistration.objects.filter(pk=agent_id).update(poll_count=F("poll_count") + 1, last_polled_at=timezone.now())
    return ClaimStatus(
        status="pending_claim", expires_at=registration.expires_at, poll_in=poll_interval(registration.poll_count)
    )


def _deliver(registration: AgentRegistration, source_address: str | None) -> bool:
    now = timezone.now()
    delivered = AgentRegistration.objects.filter(
        pk=registration.pk, pending_api_key=registration.pending_api_key
    ).update(pending_api_key=None, state=RegistrationState.DELIVERED, delivered_at=now, last_polled_at=now)
    if delivered:
        metrics.KEY_DELIVERIES.inc()
        audit_record(
            actor=Actor.system(f"agent:{registration.pk}", source_address=source_address),
            action="agent.key_delivered",
            object_type="agent",
            object_id=registration.pk,
        )
    return bool(delivered)


# ---------------------------------------------------------------------------------------------
# Claiming


def agent_claim(*, actor: Actor, agent_id, claim_token: str, section: Section, name: str = "") -> Agent:
    """Claim a pending registration into ``section``: the agent, its key (held for one delivery)
    and its self-endpoint appear in one transaction. A wrong token counts towards the lock."""
    try:
        authorize(actor, section.tenant_id, Role.OPERATOR)
        outcome = _claim(actor, agent_id, claim_token, section, name)
    except DomainError as exc:
        _claim_failed(actor, agent_id, section, exc.code)
        raise
    if isinstance(outcome, _WrongToken):
        locked = outcome.attempts >= MAX_FAILED_CLAIMS
        _claim_failed(actor, agent_id, section, "invalid_claim_token", failed_attempts=outcome.attempts, locked=locked)
        raise Conflict("The claim token does not match.", code="invalid_claim_token")
    return outcome


class _WrongToken:
    def __init__(self, attempts: int):
        self.attempts = attempts


@transaction.atomic
def _claim(actor: Actor, agent_id, claim_token: str, section: Section, name: str) -> Agent | _WrongToken:
    registration = AgentRegistration.objects.select_for_update().filter(pk=agent_id).first()
    if registration is None:
        raise NotFound("No pending registration for this agent.", code="claim_not_found")
    _check_claimable(registration)
    if not hashes_match(registration.claim_token_hash, claim_token_hash(claim_token)):
        # Counted under the row lock and committed with it, so concurrent guesses see each other's
        # count: counting after the rollback let a burst of guesses all pass the lock check.
        AgentRegistration.objects.filter(pk=agent_id).update(failed_claim_attempts=F("failed_claim_attempts") + 1)
        return _WrongToken(registration.failed_claim_attempts + 1)
    agent, key = _create_agent(actor, registration, section, name)
    registration.state = RegistrationState.CLAIMED
    registration.pending_api_key = key
    registration.claimed_at = agent.claimed_at
    registration.claimed_by = actor.user
    registration.save()
    metrics.CLAIM_ATTEMPTS.labels("claimed").inc()
    audit_record(actor=actor, action="agent.claim", obj=agent, tenant=section.tenant, details={"section": section.name})
    return agent


def _check_claimable(registration: AgentRegistration) -> None:
    if registration.state != RegistrationState.PENDING or Agent.objects.filter(pk=registration.pk).exists():
        raise Conflict("This agent is already claimed.", code="already_claimed")
    if registration.is_locked:
        raise Conflict("Too many wrong claim tokens; the agent must register again to unlock.", code="claim_locked")
    if registration.is_expired:
        raise Conflict("The registration expired; the agent must register again.", code="claim_expired")


def _claim_failed(actor: Actor, agent_id, section: Section, reason: str, **details) -> None:
    """Count and audit a refused claim (a wrong token was already counted by ``_claim``)."""
    metrics.CLAIM_ATTEMPTS.labels(reason).inc()
    audit_record(
        actor=actor,
        action="agent.claim_failed",
        object_type="agent",
        object_id=agent_id,
        tenant=section.tenant,
        details={"reason": reason, **details},
    )


def _self_endpoint_address(registration: AgentRegistration) -> str:
    addresses = [entry for entry in registration.ip_addresses or [] if entry.get("ip")]
    recommended = next((entry["ip"] for entry in addresses if entry.get("recommended")), None)
    return recommended or (addresses[0]["ip"] if addresses else registration.hostname)


def _create_agent(actor: Actor, registration: AgentRegistration, section: Section, name: str) -> tuple[Agent, str]:
    endpoint = Endpoint.objects.create(
        section=section, address=_self_endpoint_address(registration), description=f"agent {registration.hostname}"
    )
    config_versions_bump(section_ids=[section.pk])  # other agents of the section gain an endpoint
    key = api_key_generate()
    try:
        agent = Agent.objects.create(
            id=registration.pk,
            section=section,
            name=name or registration.hostname,
            hostname=registration.hostname,
            agent_version=registration.agent_version,
            ip_addresses=registration.ip_addresses,
            self_endpoint=endpoint,
            api_key_hash=api_key_hash(key),
            api_key_prefix=api_key_display_prefix(key),
            claimed_at=timezone.now(),
            claimed_by=actor.user,
        )
    except IntegrityError:
        raise Conflict("This agent is already claimed.", code="already_claimed") from None
    return agent, key
