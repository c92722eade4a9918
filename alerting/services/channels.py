"""Writes for notification channels, the check of each type's configuration, and the masked view of it
that is all anyone sees once it is saved (its secrets never leave the server, nor reach the audit log)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from alerting.delivery import LEASE_MARGIN, deliver
from alerting.models import Channel, ChannelType, DeliveryAttempt, Notification, NotificationStatus
from alerting.services.notifications import test_notification
from alerting.targets import validate_outbound_url
from smotra.errors import Invalid
from tenants.models import Role, Tenant
from tenants.services import Actor, audit_record, authorize

CHAT_TYPES = (ChannelType.SLACK, ChannelType.DISCORD, ChannelType.TEAMS)
MAX_URL = 2048
MAX_SECRET = 256
MAX_RECIPIENTS = 50
ROUTING_KEY = re.compile(r"[!-~]{1,64}")  # printable ASCII without spaces
HINT_MIN_LENGTH = 8  # a shorter routing key gets no hint: its last 4 characters would be half of it


def _url(value, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid(f"{field} must be a URL.", field=field)
    if len(value) > MAX_URL:
        raise Invalid(f"{field} must be at most {MAX_URL} characters.", field=field)
    return validate_outbound_url(value, field=field)


def _secret(value, field: str) -> str:
    # Printable only: a NUL would not even fit in PostgreSQL's jsonb.
    if not isinstance(value, str) or len(value) > MAX_SECRET or not value.isprintable():
        raise Invalid(f"{field} must be at most {MAX_SECRET} printable characters.", field=field)
    return value


def _recipients(value, field: str) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_RECIPIENTS:
        raise Invalid(f"{field} must be a list of 1 to {MAX_RECIPIENTS} email addresses.", field=field)
    for index, address in enumerate(value):
        try:
            if not isinstance(address, str):
                raise ValidationError("not a string")
            validate_email(address)
        except ValidationError:
            raise Invalid(f"{field}[{index}] is not a valid email address.", field=f"{field}[{index}]") from None
    return list(dict.fromkeys(value))


def _routing_key(value, field: str) -> str:
    if not isinstance(value, str) or not ROUTING_KEY.fullmatch(value):
        raise Invalid(f"{field} must be 1 to 64 printable characters without spaces.", field=field)
    return value


# Per type: every key it takes, with its check and whether it is required.
KEYS: dict[str, dict[str, tuple[Callable, bool]]] = {
    ChannelType.WEBHOOK: {"url": (_url, True), "secret": (_secret, False)},
    ChannelType.EMAIL: {"recipients": (_recipients, True)},
    **{chat: {"webhook_url": (_url, True)} for chat in CHAT_TYPES},
    ChannelType.PAGERDUTY: {"routing_key": (_routing_key, True)},
}


def configuration_clean(channel_type: str, configuration, *, stored: dict | None = None) -> dict:
    """The configuration to store for a channel of ``channel_type``. With ``stored`` (a change), keys
    left out keep their stored values, so a secret need not be sent again; an empty ``secret``
    removes it. Only the keys sent are checked (a stored URL is not resolved again)."""
    if not isinstance(configuration, dict):
        raise Invalid("configuration must be an object.", field="configuration")
    keys = KEYS[channel_type]
    unknown = sorted(set(configuration) - set(keys))
    if unknown:
        known = ", ".join(keys)
        raise Invalid(
            f"A channel of type {channel_type} has no configuration key {unknown[0]!r} (it takes {known}).",
            field=f"configuration.{unknown[0]}",
        )
    checked = {key: keys[key][0](value, f"configuration.{key}") for key, value in configuration.items()}
    clean = {key: value for key, value in {**(stored or {}), **checked}.items() if key in keys and value != ""}
    for key, (_check, required) in keys.items():
        if required and key not in clean:
            raise Invalid(
                f"configuration.{key} is required for a {channel_type} channel.", field=f"configuration.{key}"
            )
    return clean


def configuration_masked(channel_type: str, configuration: dict) -> dict:
    """What the API shows of a configuration: the webhook URL and recipients, nothing secret."""
    configuration = configuration if isinstance(configuration, dict) else {}
    if channel_type == ChannelType.WEBHOOK:
        return {"url": configuration.get("url", ""), "secret_set": bool(configuration.get("secret"))}
    if channel_type == ChannelType.EMAIL:
        return {"recipients": list(configuration.get("recipients") or [])}
    if channel_type in CHAT_TYPES:
        url = configuration.get("webhook_url") or ""
        return {"webhook_url": _origin(url), "webhook_url_set": bool(url)}
    if channel_type == ChannelType.PAGERDUTY:
        key = configuration.get("routing_key") or ""
        return {"routing_key_hint": f"…{key[-4:]}" if len(key) >= HINT_MIN_LENGTH else "…"}
    return {}


def _origin(url: str) -> str:
    """Scheme and host of a chat webhook URL: its path and query hold the token."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    host = parts.netloc.rpartition("@")[2]  # never the user:password part
    return f"{parts.scheme}://{host}" if parts.scheme and host else ""


@transaction.atomic
def channel_create(
    *, actor: Actor, tenant: Tenant, name: str, type: str, configuration: dict, enabled: bool = True
) -> Channel:
    authorize(actor, tenant.pk, Role.ADMIN)
    channel = Channel.objects.create(
        tenant=tenant, name=name, type=type, configuration=configuration_clean(type, configuration), enabled=enabled
    )
    audit_record(actor=actor, action="channel.create", obj=channel, tenant=tenant, details=_keys_of(channel))
    return channel


@transaction.atomic
def channel_update(
    *, actor: Actor, channel: Channel, type: str | None = None, configuration: dict | None = None, **changes
) -> Channel:
    """Change a channel (not its type: a new type is a new channel); see configuration_clean."""
    authorize(actor, channel.tenant_id, Role.ADMIN)
    if type is not None and type != channel.type:
        raise Invalid(f"A channel's type cannot change (this one is {channel.type}); create a new one.", field="type")
    if configuration is not None:
        channel.configuration = configuration_clean(channel.type, configuration, stored=channel.configuration)
    for field, value in changes.items():
        setattr(channel, field, value)
    channel.save()
    details = {**changes, **(_keys_of(channel) if configuration is not None else {})}
    audit_record(actor=actor, action="channel.update", obj=channel, tenant=channel.tenant, details=details)
    return channel


def _keys_of(channel: Channel) -> dict:
    return {"configuration_keys": sorted(channel.configuration)}  # never the values: they are secrets


@transaction.atomic
def channel_delete(*, actor: Actor, channel: Channel) -> None:
    """Delete a channel: rules stop notifying it, and its undelivered notifications go with it."""
    authorize(actor, channel.tenant_id, Role.ADMIN)
    audit_record(actor=actor, action="channel.delete", obj=channel, tenant=channel.tenant)
    channel.delete()


def channel_test(*, actor: Actor, channel: Channel, now: datetime | None = None) -> DeliveryAttempt:
    """Send a ``test`` notification to the channel now and say how it went. One attempt only: a
    failed test is marked failed rather than retried by the worker."""
    authorize(actor, channel.tenant_id, Role.ADMIN)
    now = now or timezone.now()
    with transaction.atomic():
        notification = test_notification(channel, now=now)
        # Leased as it is written, so the delivery worker does not send it too meanwhile.
        lease = timezone.now() + timedelta(seconds=settings.SMOTRA.alerts.delivery_timeout) + LEASE_MARGIN
        Notification.objects.filter(pk=notification.pk).update(leased_until=lease)
        audit_record(actor=actor, action="channel.test", obj=channel, tenant=channel.tenant)
    attempt = deliver(notification, now=now)  # outside any transaction: it waits on the network
    Notification.objects.filter(pk=notification.pk, status=NotificationStatus.PENDING).update(
        status=NotificationStatus.FAILED
    )
    return attempt
