"""Agents: pending registrations (contract §3-§5) and claimed agents with their API keys."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from smotra.models import TimestampedModel
from tenants.scoping import TenantScopedQuerySet

# Wrong claim tokens that lock one claimer (a user, a source address) out of a pending registration,
# and failures across all claimers that lock the registration itself, until the agent registers
# again (contract §5). Per claimer, so one tenant cannot lock another out; the registration-wide
# bound still stops guessing by many accounts.
MAX_FAILED_CLAIMS_PER_CLAIMER = 5
MAX_FAILED_CLAIMS = 25


class AgentStatus(models.TextChoices):
    ONLINE = "online", "Online"
    OFFLINE = "offline", "Offline"
    NEVER_SEEN = "never_seen", "Never seen"
    REVOKED = "revoked", "Revoked"


class RegistrationState(models.TextChoices):
    PENDING = "pending", "Pending claim"
    CLAIMED = "claimed", "Claimed, key not yet delivered"
    DELIVERED = "delivered", "Key delivered"


class AgentRegistration(models.Model):
    """An agent's self-registration, keyed by the id the agent chose, until (and after) it is claimed.

    Holds the SHA-256 of the agent's claim token, the poll counter behind ``pollIn`` backoff, the
    failed-claim counter behind the lock, and the plaintext API key for exactly one delivery."""

    agent_id = models.UUIDField(primary_key=True)
    claim_token_hash = models.CharField(max_length=64)  # never shown nor filterable anywhere
    hostname = models.CharField(max_length=255)
    agent_version = models.CharField(max_length=100)
    ip_addresses = models.JSONField(default=list, blank=True)
    # Where the agent registered from: only that address may change the token or receive the key.
    source_address = models.GenericIPAddressField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=RegistrationState.choices, default=RegistrationState.PENDING)
    registered_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    poll_count = models.PositiveIntegerField(default=0)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    failed_claim_attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The key in clear, between the claim and its single delivery; cleared in the delivering UPDATE.
    pending_api_key = models.CharField(max_length=128, null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivered_to = models.GenericIPAddressField(null=True, blank=True)
    # Polls of the claimed key from other addresses (refused; audited at most once a minute).
    refused_deliveries = models.PositiveIntegerField(default=0)
    last_refused_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-registered_at"]
        verbose_name = "pending agent"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=RegistrationState.values),
                name="registration_state_valid",
                violation_error_message="Unknown registration state.",
            ),
            models.CheckConstraint(
                condition=models.Q(claim_token_hash__regex=r"^[0-9a-f]{64}$"),  # noqa: S106 - a hash pattern
                name="registration_claim_token_hash_hex",
                violation_error_message="The claim token hash must be 64 lower-case hex characters.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hostname} ({self.agent_id})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def is_locked(self) -> bool:
        """Locked for every claimer (too many failures in all); per-claimer locks are ClaimFailures."""
        return self.failed_claim_attempts >= MAX_FAILED_CLAIMS


class ClaimFailure(models.Model):
    """Wrong claim tokens of one claimer (``user:<id>``, ``address:<ip>`` or ``cli``) for one registration."""

    registration = models.ForeignKey(AgentRegistration, on_delete=models.CASCADE, related_name="claim_failures")
    claimer = models.CharField(max_length=100)
    count = models.PositiveIntegerField(default=0)
    last_failed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["registration", "claimer"],
                name="claim_failure_per_claimer",
                violation_error_message="This claimer's failures are already counted.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.claimer}: {self.count} wrong token(s) for {self.registration_id}"


class AgentQuerySet(TenantScopedQuerySet):
    def with_document_version(self) -> AgentQuerySet:
        """Annotate ``section_config_version``, so ``document_version`` costs no query per agent."""
        return self.annotate(section_config_version=models.F("section__config_version"))

    def with_status(self, status: str, *, now=None) -> AgentQuerySet:
        """Agents whose computed status (see :meth:`Agent.status`) is ``status``, in SQL."""
        cutoff = (now or timezone.now()) - timedelta(seconds=settings.SMOTRA.agent.offline_after)
        live = self.filter(revoked_at__isnull=True)
        return {
            AgentStatus.REVOKED: self.filter(revoked_at__isnull=False),
            AgentStatus.NEVER_SEEN: live.filter(last_seen_at__isnull=True),
            AgentStatus.ONLINE: live.filter(last_seen_at__gte=cutoff),
            AgentStatus.OFFLINE: live.filter(last_seen_at__lt=cutoff),
        }[status]


class Agent(TimestampedModel):
    """A claimed agent. Its id is the UUID the agent chose when it registered."""

    id = models.UUIDField(primary_key=True, editable=False)
    section = models.ForeignKey("tenants.Section", on_delete=models.PROTECT, related_name="agents")
    name = models.CharField(max_length=200)
    hostname = models.CharField(max_length=255, blank=True, default="")
    agent_version = models.CharField(max_length=100, blank=True, default="")
    ip_addresses = models.JSONField(default=list, blank=True)
    tags = models.ManyToManyField("endpoints.Tag", blank=True, related_name="agents")
    self_endpoint = models.OneToOneField(
        "endpoints.Endpoint", null=True, blank=True, on_delete=models.SET_NULL, related_name="self_agent"
    )
    monitoring_overrides = models.JSONField(default=dict, blank=True)
    server_overrides = models.JSONField(default=dict, blank=True)
    storage_overrides = models.JSONField(default=dict, blank=True)
    # The agent's own part of its configuration version (see document_version): it may go below 1
    # when a move to a section with a higher counter keeps the total rising by one.
    config_version = models.BigIntegerField(default=1)
    # SHA-256 hex of the API key; the key itself is never stored after its delivery.
    api_key_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    api_key_prefix = models.CharField(max_length=16, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_result_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = AgentQuerySet.as_manager()

    # Agents authenticate as themselves: DRF and the access log treat them as principals.
    is_agent = True
    is_authenticated = True
    is_superuser = False

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["section", "name"], name="agent_section_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def document_version(self) -> int:
        """The version of the agent's configuration document: its own counter plus its section's,
        so a change to the section's endpoints is one UPDATE of the section, not of every agent."""
        section_version = getattr(self, "section_config_version", None)
        if section_version is None:
            section_version = self.section.config_version
        return self.config_version + section_version

    def status(self, *, now=None) -> str:
        """online / offline / never_seen / revoked, from last seen and ``agent.offline_after``."""
        if self.revoked_at is not None:
            return AgentStatus.REVOKED
        if self.last_seen_at is None:
            return AgentStatus.NEVER_SEEN
        cutoff = (now or timezone.now()) - timedelta(seconds=settings.SMOTRA.agent.offline_after)
        return AgentStatus.ONLINE if self.last_seen_at >= cutoff else AgentStatus.OFFLINE


class AgentConfigCache(models.Model):
    """The rendered configuration document of an agent at ``version``. Valid only while the agent's
    document_version equals it, so a bump (of the agent or its section) invalidates it for every
    worker without any message."""

    agent = models.OneToOneField(Agent, on_delete=models.CASCADE, primary_key=True, related_name="+")
    version = models.PositiveBigIntegerField()
    document = models.JSONField()

    def __str__(self) -> str:
        return f"configuration of {self.agent_id} v{self.version}"
