"""Agent onboarding (contract §3-§5): self-registration, claim status with one-time key delivery, claims."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from agents.keys import api_key_display_prefix, api_key_generate, api_key_hash, claim_token_hash, hashes_match
from agents.models import (
    MAX_FAILED_CLAIMS,
    MAX_FAILED_CLAIMS_PER_CLAIMER,
    Agent,
    AgentRegistration,
    ClaimFailure,
    RegistrationState,
)
from agents.services.management import agent_section_move
from agents.services.versions import config_version_after_move, config_version_lock, config_versions_bump
from endpoints.models import Endpoint
from endpoints.validators import validate_address
from smotra import metrics
from smotra.errors import Conflict, DomainError, Forbidden, NotFound, RateLimited
from smotra.ratelimit import ratelimit_hit
from tenants.models import AuditEvent, Role, Section
from tenants.services import Actor, audit_record, authorize, tenants_with_role


@dataclass(frozen=True)
class ClaimStatus:
    """What a poll answers: pending (with backoff) or claimed with the key (exactly once)."""

    status: str
    expires_at: datetime | None = None
    poll_in: int | None = None
    api_key: str | None = None


# ---------------------------------------------------------------------------------------------
# Registration

# Audit actions about a pending registration. They belong to no tenant until the agent is claimed;
# the claim hands them to the claiming tenant (superusers see them throughout).
PRE_CLAIM_AUDIT_ACTIONS = ("agent.claim_failed", "agent.registration_conflict")


def registration_register(
    *,
    agent_id,
    claim_token_hash: str,
    hostname: str,
    agent_version: str,
    ip_addresses: list[dict],
    source_address: str | None,
) -> tuple[AgentRegistration, bool]:
    """Register (201) or re-register (200) an unclaimed agent (contract §3).

    Only the address that registered may re-register with another token (a restarted agent): that
    replaces the details and restarts the expiry, the poll counter and the claim locks. The same
    token from elsewhere changes nothing; another token from elsewhere is a 409, or anyone who
    learnt the id could swap in a token of their own and claim the agent."""
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
        registration, outcome = _register_row(agent_id, fields)
    except IntegrityError:  # a concurrent first registration of the same id won the insert
        registration, outcome = _register_row(agent_id, fields)
    metrics.REGISTRATIONS.labels(outcome).inc()
    if outcome == "conflict":
        _registration_conflict(agent_id, source_address)
    return registration, outcome == "created"


@transaction.atomic
def _register_row(agent_id, fields: dict) -> tuple[AgentRegistration | None, str]:
    agent = Agent.objects.filter(pk=agent_id).only("revoked_at").first()
    if agent is not None and agent.revoked_at is None:
        raise _already_claimed()
    registration = AgentRegistration.objects.select_for_update().filter(pk=agent_id).first()
    if registration is None:
        return AgentRegistration.objects.create(agent_id=agent_id, **fields), "created"
    if registration.state != RegistrationState.PENDING and agent is None:
        raise _already_claimed()
    if registration.source_address != fields["source_address"]:
        same_token = hashes_match(registration.claim_token_hash, fields["claim_token_hash"])
        return (registration, "unchanged") if same_token else (None, "conflict")
    # The agent itself: a restart with a new token, or a revoked agent coming back (its claim
    # returns it to the same agent record, history and all).
    for name, value in {**fields, **REOPENED}.items():
        setattr(registration, name, value)
    registration.save()
    registration.claim_failures.all().delete()  # the agent itself is back: its locks are lifted
    return registration, "renewed"


# What a registration forgets when a revoked agent registers again.
REOPENED = {
    "state": RegistrationState.PENDING,
    "pending_api_key": None,
    "claimed_at": None,
    "claimed_by": None,
    "delivered_at": None,
    "delivered_to": None,
    "refused_deliveries": 0,
    "last_refused_at": None,
}


def _registration_conflict(agent_id, source_address: str | None) -> None:
    audit_record(
        actor=Actor.system("anonymous", source_address=source_address),
        action="agent.registration_conflict",
        object_type="agent",
        object_id=agent_id,
        details={"reason": "another claim token from another address"},
    )
    raise Conflict(
        "This agent id is registered from another address with another claim token; only that address "
        "may replace the token. An administrator can discard the registration.",
        code="registration_conflict",
    )


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
    exactly one changes a row and delivers; the others answer pending. With
    ``agent.bind_to_source_address`` only a poll from the registering address can be that one:
    anyone else who knows the id is answered pending (the agent tolerates that) and audited."""
    registration = AgentRegistration.objects.filter(pk=agent_id).first()
    if registration is None:
        raise NotFound("No registration for this agent.")
    if registration.pending_api_key:
        if not _may_receive_key(registration, source_address):
            _refuse_delivery(registration, source_address)
        elif _deliver(registration, source_address):
            return ClaimStatus(status="claimed", api_key=registration.pending_api_key)
    AgentRegistration.objects.filter(pk=agent_id).update(poll_count=F("poll_count") + 1, last_polled_at=timezone.now())
    return ClaimStatus(
        status="pending_claim", expires_at=registration.expires_at, poll_in=poll_interval(registration.poll_count)
    )


def _may_receive_key(registration: AgentRegistration, source_address: str | None) -> bool:
    return not settings.SMOTRA.agent.bind_to_source_address or registration.source_address == source_address


REFUSAL_AUDIT_INTERVAL = timedelta(minutes=1)


def _refuse_delivery(registration: AgentRegistration, source_address: str | None) -> None:
    """Count a poll for the key from a foreign address; audit it at most once a minute, so a
    stranger polling every 50 ms cannot flood the audit log."""
    now = timezone.now()
    metrics.KEY_DELIVERY_REFUSALS.inc()
    quiet = Q(last_refused_at__isnull=True) | Q(last_refused_at__lte=now - REFUSAL_AUDIT_INTERVAL)
    counted = AgentRegistration.objects.filter(pk=registration.pk)
    first_in_a_while = counted.filter(quiet).update(refused_deliveries=F("refused_deliveries") + 1, last_refused_at=now)
    if not first_in_a_while:
        counted.update(refused_deliveries=F("refused_deliveries") + 1)
        return
    agent = Agent.objects.select_related("section").filter(pk=registration.pk).first()
    audit_record(
        actor=Actor.system("anonymous", source_address=source_address),
        action="agent.key_delivery_refused",
        object_type="agent",
        object_id=registration.pk,
        tenant=agent.section.tenant if agent else None,
        details={"registered_from": registration.source_address, "refused_so_far": registration.refused_deliveries + 1},
    )


def _deliver(registration: AgentRegistration, source_address: str | None) -> bool:
    now = timezone.now()
    delivered = AgentRegistration.objects.filter(
        pk=registration.pk, pending_api_key=registration.pending_api_key
    ).update(
        pending_api_key=None,
        state=RegistrationState.DELIVERED,
        delivered_at=now,
        delivered_to=source_address,
        last_polled_at=now,
    )
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
    and its self-endpoint appear in one transaction. A wrong token counts towards the locks."""
    try:
        authorize(actor, section.tenant_id, Role.OPERATOR)
        outcome = _claim(actor, agent_id, claim_token, section, name)
    except DomainError as exc:
        _claim_failed(actor, agent_id, exc.code)
        raise
    if isinstance(outcome, _WrongToken):
        _wrong_token(actor, agent_id, outcome)
    return outcome


def registration_discard(*, actor: Actor, agent_id, claim_token: str | None = None) -> None:
    """Forget a pending registration (its agent's next poll is a 404 and it registers anew).

    A pending registration belongs to whoever installed the agent: others prove it with the claim
    token, as for a claim (and are counted the same way). Superusers and the command line may
    discard without it, e.g. a registration squatted from another address."""
    privileged = actor.trusted or (actor.user is not None and actor.user.is_superuser)
    if not privileged and not (actor.user is not None and tenants_with_role(actor.user, Role.OPERATOR).exists()):
        raise Forbidden("Only operators may discard pending registrations.")
    try:
        outcome = _discard(actor, agent_id, None if privileged else claim_token or "")
    except DomainError as exc:
        _claim_failed(actor, agent_id, exc.code)
        raise
    if isinstance(outcome, _WrongToken):
        _wrong_token(actor, agent_id, outcome)


class _WrongToken:
    def __init__(self, attempts: int, locked: bool):
        self.attempts, self.locked = attempts, locked


@transaction.atomic
def _claim(actor: Actor, agent_id, claim_token: str, section: Section, name: str) -> Agent | _WrongToken:
    registration = _pending_for_update(agent_id)
    wrong = _verify_token(actor, registration, claim_token, section)
    if wrong:
        return wrong
    returning = Agent.objects.select_related("section", "self_endpoint").filter(pk=agent_id).first()
    if returning is not None:
        agent, key = _restore_agent(actor, returning, registration, section, name)
    else:
        agent, key = _create_agent(actor, registration, section, name)
    registration.state = RegistrationState.CLAIMED
    registration.pending_api_key = key
    registration.claimed_at = agent.claimed_at
    registration.claimed_by = actor.user
    registration.save()
    registration.claim_failures.all().delete()
    # What happened to this registration before anyone owned it is the new owner's to see.
    AuditEvent.objects.filter(
        object_type="agent", object_id=str(agent.pk), tenant__isnull=True, action__in=PRE_CLAIM_AUDIT_ACTIONS
    ).update(tenant=section.tenant)
    metrics.CLAIM_ATTEMPTS.labels("claimed").inc()
    audit_record(actor=actor, action="agent.claim", obj=agent, tenant=section.tenant, details={"section": section.name})
    return agent


@transaction.atomic
def _discard(actor: Actor, agent_id, claim_token: str | None) -> _WrongToken | None:
    registration = _pending_for_update(agent_id)
    if claim_token is not None:
        wrong = _verify_token(actor, registration, claim_token)
        if wrong:
            return wrong
    elif registration.state != RegistrationState.PENDING:
        raise Conflict("This agent is already claimed.", code="already_claimed")
    audit_record(
        actor=actor,
        action="agent.registration_discarded",
        object_type="agent",
        object_id=registration.pk,
        details={"hostname": registration.hostname, "registered_from": registration.source_address},
    )
    registration.delete()
    return None


def _pending_for_update(agent_id) -> AgentRegistration:
    registration = AgentRegistration.objects.select_for_update().filter(pk=agent_id).first()
    if registration is None:
        raise NotFound("No pending registration for this agent.", code="claim_not_found")
    return registration


def _claimers(actor: Actor) -> list[str]:
    """Who is guessing, for the per-claimer locks: the person and the address they act from."""
    keys = [f"user:{actor.user.pk}"] if actor.user is not None else [actor.label]
    if actor.source_address:
        keys.append(f"address:{actor.source_address}")
    return keys


def _verify_token(
    actor: Actor, registration: AgentRegistration, claim_token: str, section: Section | None = None
) -> _WrongToken | None:
    """None when the token matches a claimable registration; a wrong token is counted per claimer
    and in all, under the registration's row lock and committed with it, so concurrent guesses see
    each other's counts (counting after a rollback let a burst of guesses all pass the lock)."""
    claimers = _claimers(actor)
    _check_claimable(registration, claimers, section)
    if hashes_match(registration.claim_token_hash, claim_token_hash(claim_token)):
        return None
    now = timezone.now()
    total = registration.failed_claim_attempts + 1
    AgentRegistration.objects.filter(pk=registration.pk).update(failed_claim_attempts=F("failed_claim_attempts") + 1)
    worst = 0
    for claimer in claimers:
        failure, _ = ClaimFailure.objects.get_or_create(
            registration=registration, claimer=claimer, defaults={"last_failed_at": now}
        )
        ClaimFailure.objects.filter(pk=failure.pk).update(count=F("count") + 1, last_failed_at=now)
        worst = max(worst, failure.count + 1)
    return _WrongToken(worst, locked=worst >= MAX_FAILED_CLAIMS_PER_CLAIMER or total >= MAX_FAILED_CLAIMS)


def _check_claimable(registration: AgentRegistration, claimers: list[str], section: Section | None) -> None:
    returning = Agent.objects.filter(pk=registration.pk).select_related("section").first()
    taken = returning is not None and not _may_return(returning, section)
    if registration.state != RegistrationState.PENDING or taken:
        raise Conflict("This agent is already claimed.", code="already_claimed")
    locked_out = registration.claim_failures.filter(
        claimer__in=claimers, count__gte=MAX_FAILED_CLAIMS_PER_CLAIMER
    ).exists()
    if registration.is_locked or locked_out:
        raise Conflict(
            "Too many wrong claim tokens; the agent must register again from its own address to unlock.",
            code="claim_locked",
        )
    if registration.is_expired:
        raise Conflict("The registration expired; the agent must register again.", code="claim_expired")


def _may_return(agent: Agent, section: Section | None) -> bool:
    """A revoked agent that registered again comes back to its own tenant only: its history is
    that tenant's (a discard, which names no section, may forget the registration)."""
    return agent.revoked_at is not None and (section is None or section.tenant_id == agent.section.tenant_id)


def _wrong_token(actor: Actor, agent_id, wrong: _WrongToken):
    _claim_failed(actor, agent_id, "invalid_claim_token", failed_attempts=wrong.attempts, locked=wrong.locked)
    raise Conflict("The claim token does not match.", code="invalid_claim_token")


def _claim_failed(actor: Actor, agent_id, reason: str, **details) -> None:
    """Count and audit a refused claim. Until the agent is claimed the event belongs to no tenant
    (superusers see it; the claim hands it to the new owner): recording it under the claimer's
    tenant would show a stranger's guesses to the stranger only."""
    metrics.CLAIM_ATTEMPTS.labels(reason).inc()
    owner = Agent.objects.select_related("section__tenant").filter(pk=agent_id).first()
    audit_record(
        actor=actor,
        action="agent.claim_failed",
        object_type="agent",
        object_id=agent_id,
        tenant=owner.section.tenant if owner else None,
        details={"reason": reason, **details},
    )


def _self_endpoint_address(registration: AgentRegistration) -> str | None:
    """The recommended IP, else the first, else the hostname when it is a valid address (the same
    rule as the endpoints API); None when nothing is."""
    addresses = [entry for entry in registration.ip_addresses or [] if entry.get("ip")]
    recommended = next((entry["ip"] for entry in addresses if entry.get("recommended")), None)
    candidate = recommended or (addresses[0]["ip"] if addresses else registration.hostname)
    try:
        validate_address(candidate)
    except ValidationError:
        return None
    return candidate


def _restore_agent(
    actor: Actor, agent: Agent, registration: AgentRegistration, section: Section, name: str
) -> tuple[Agent, str]:
    """The same agent record, live again with a new key: its results and history stay."""
    key = api_key_generate()
    previous = config_version_lock(agent, section.pk)
    moved = agent_section_move(agent, section, keep_tags=False) if section.pk != agent.section_id else set()
    agent.name = name or agent.name
    agent.hostname, agent.agent_version = registration.hostname, registration.agent_version
    agent.ip_addresses = registration.ip_addresses
    agent.api_key_hash, agent.api_key_prefix = api_key_hash(key), api_key_display_prefix(key)
    agent.claimed_at, agent.claimed_by, agent.revoked_at = timezone.now(), actor.user, None
    agent.save()
    config_versions_bump(section_ids=moved)
    config_version_after_move(agent, previous)  # one above what it was, wherever it went
    return agent, key


def _create_agent(actor: Actor, registration: AgentRegistration, section: Section, name: str) -> tuple[Agent, str]:
    address = _self_endpoint_address(registration)
    endpoint = None
    if address is not None:
        endpoint = Endpoint.objects.create(
            section=section, address=address, description=f"agent {registration.hostname}"
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
