"""Delivery of the outbox (alerting.models.Notification): claim a due row under a lease, send it outside
any transaction, record the attempt, retry with exponential backoff until alerts.max_delivery_attempts.

Several workers may run ``deliver_due`` at once. Each claim is ``SELECT ... FOR UPDATE SKIP LOCKED`` plus
a lease in one short transaction, so a row goes to one worker. A worker that dies mid-send leaves a
lease that expires; the next pass sends again with the same idempotency key, for receivers to dedupe.

Secrets (webhook and chat webhook URLs, signing secrets, routing keys) never reach an error, a log line
or a metric: those name the notification, the channel id and its type only."""

from __future__ import annotations

import functools
import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from alerting.metrics import NOTIFICATIONS
from alerting.models import Channel, ChannelType, DeliveryAttempt, Notification, NotificationStatus
from alerting.targets import outbound_addresses
from smotra.errors import Invalid

logger = logging.getLogger("smotra.alerts")

LEASE_MARGIN = timedelta(seconds=30)
FIRST_BACKOFF = 10.0  # seconds; doubles per failed attempt
MAX_BACKOFF = 3600.0
MAX_ERROR = 500  # characters of an attempt's error kept
USER_AGENT = "Smotra"
SECRET_KEYS = ("url", "webhook_url", "secret", "routing_key")
COLORS = {"critical": 0xD93025, "warning": 0xF9AB00, "info": 0x1A73E8, "resolved": 0x188038}
PAGERDUTY_ACTIONS = {"alert.acknowledged": "acknowledge", "alert.resolved": "resolve"}


@dataclass(frozen=True)
class Sent:
    """What one send came to: the HTTP status if there was one, and an error unless delivered."""

    status_code: int | None = None
    error: str = ""
    final: bool = False  # retrying cannot help (a disabled channel)

    @property
    def outcome(self) -> str:
        return "failed" if self.error else "delivered"


# ---------------------------------------------------------------------------------------------
# The worker's side: claim, send, settle.


def deliver_due(*, now: datetime | None = None, limit: int = 100) -> int:
    """Send up to ``limit`` due notifications, claiming one at a time: a lease is taken right before its
    send, so it cannot run out while earlier sends of the pass are slow, and parallel workers share
    the work instead of one hoarding a batch. Returns how many were attempted."""
    attempted = 0
    while attempted < limit:
        notification = _claim_one(now or timezone.now())
        if notification is None:
            break
        deliver(notification, now=now)
        attempted += 1
    return attempted


def _claim_one(now: datetime) -> Notification | None:
    lease = now + timedelta(seconds=settings.SMOTRA.alerts.delivery_timeout) + LEASE_MARGIN
    with transaction.atomic():
        # of=self: locking the joined channel row too would make workers skip each other's channels.
        notification = (
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel")
            .filter(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
            .order_by("next_attempt_at", "id")
            .first()
        )
        if notification is not None:
            Notification.objects.filter(pk=notification.pk).update(leased_until=lease)
            notification.leased_until = lease
    return notification


def deliver(notification: Notification, *, now: datetime | None = None) -> DeliveryAttempt:
    """Send ``notification`` now, record the attempt and settle the notification: delivered, or due
    again after a backoff, or failed for good after alerts.max_delivery_attempts."""
    now = now or timezone.now()
    channel = notification.channel
    started = time.perf_counter()
    sent = _send(channel, notification.payload)
    duration_ms = (time.perf_counter() - started) * 1000
    with transaction.atomic():
        attempt = DeliveryAttempt.objects.create(
            notification=notification,
            at=now,
            duration_ms=round(duration_ms, 3),
            status_code=sent.status_code,
            outcome=sent.outcome,
            error=sent.error,
        )
        _settle(notification, sent, now)
    channel_type = channel.type if channel.type in ChannelType.values else "unknown"
    NOTIFICATIONS.labels(channel_type=channel_type, outcome=sent.outcome).inc()
    _log(notification, channel, sent)
    return attempt


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure: 10 s, 20 s, 40 s... never more than an hour."""
    return timedelta(seconds=min(FIRST_BACKOFF * 2 ** (attempts - 1), MAX_BACKOFF))


def _settle(notification: Notification, sent: Sent, now: datetime) -> None:
    # Under the row lock: a worker whose lease ran out may be settling the same row.
    locked = Notification.objects.select_for_update().get(pk=notification.pk)
    if sent.outcome == "delivered":
        changes = {"status": NotificationStatus.DELIVERED, "delivered_at": now, "last_error": ""}
    else:
        attempts = locked.attempts + 1
        changes = {"attempts": attempts, "next_attempt_at": now + backoff(attempts), "last_error": sent.error}
        if locked.status != NotificationStatus.DELIVERED:
            gave_up = sent.final or attempts >= settings.SMOTRA.alerts.max_delivery_attempts
            changes["status"] = NotificationStatus.FAILED if gave_up else NotificationStatus.PENDING
    changes["leased_until"] = None
    Notification.objects.filter(pk=locked.pk).update(**changes)
    for name, value in changes.items():
        setattr(notification, name, value)


def _log(notification: Notification, channel: Channel, sent: Sent) -> None:
    if sent.error:
        logger.warning(
            "notification %s to channel %s (%s) failed: %s", notification.pk, channel.pk, channel.type, sent.error
        )
    else:
        logger.info("notification %s delivered to channel %s (%s)", notification.pk, channel.pk, channel.type)


# ---------------------------------------------------------------------------------------------
# One send per channel type.


def _send(channel: Channel, payload: dict) -> Sent:
    if not channel.enabled:
        return Sent(error="The channel is disabled: the notification was not sent.", final=True)
    sender = SENDERS.get(channel.type)
    if sender is None:
        return Sent(error=f"Unknown channel type {channel.type!r}: the notification was not sent.", final=True)
    configuration = channel.configuration if isinstance(channel.configuration, dict) else {}
    try:
        sent = sender(configuration, payload)
    except Invalid as exc:
        sent = Sent(error=exc.message)
    except Exception as exc:  # any failure to send (SMTP, TLS, a bad configuration) is a failed attempt
        sent = Sent(error=f"{type(exc).__name__}: {exc}")
    return Sent(sent.status_code, _redact(sent.error, configuration)[:MAX_ERROR], sent.final)


def _webhook(configuration: dict, payload: dict) -> Sent:
    url = _required(configuration, "url")
    body = _json(payload)
    headers = {}
    if configuration.get("secret"):
        digest = hmac.new(str(configuration["secret"]).encode(), body, hashlib.sha256).hexdigest()
        headers["X-Smotra-Signature"] = f"sha256={digest}"
    return _post(url, "url", body, payload, headers)


def _slack(configuration: dict, payload: dict) -> Sent:
    return _post(_required(configuration, "webhook_url"), "webhook_url", _json(slack_body(payload)), payload)


def _discord(configuration: dict, payload: dict) -> Sent:
    return _post(_required(configuration, "webhook_url"), "webhook_url", _json(discord_body(payload)), payload)


def _teams(configuration: dict, payload: dict) -> Sent:
    return _post(_required(configuration, "webhook_url"), "webhook_url", _json(teams_body(payload)), payload)


def _pagerduty(configuration: dict, payload: dict) -> Sent:
    body = pagerduty_body(_required(configuration, "routing_key"), payload)
    return _post(settings.SMOTRA.alerts.pagerduty_url, "alerts.pagerduty_url", _json(body), payload)


def _email(configuration: dict, payload: dict) -> Sent:
    recipients = configuration.get("recipients")
    if not isinstance(recipients, list) or not recipients or not all(isinstance(r, str) for r in recipients):
        raise Invalid("The channel configuration has no recipients.", field="recipients")
    send_mail(email_subject(payload), email_body(payload), settings.DEFAULT_FROM_EMAIL, recipients)
    return Sent()


SENDERS = {
    ChannelType.WEBHOOK: _webhook,
    ChannelType.SLACK: _slack,
    ChannelType.DISCORD: _discord,
    ChannelType.TEAMS: _teams,
    ChannelType.PAGERDUTY: _pagerduty,
    ChannelType.EMAIL: _email,
}


def _required(configuration: dict, key: str) -> str:
    value = configuration.get(key)
    if not isinstance(value, str) or not value:
        raise Invalid(f"The channel configuration has no {key}.", field=key)
    return value


def _json(document) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _redact(text: str, configuration: dict) -> str:
    """``text`` without the channel's secrets, nor the path or query of its URLs (where tokens live)."""
    for key in SECRET_KEYS:
        value = configuration.get(key)
        if not isinstance(value, str):
            continue
        parts = urlsplit(value) if key.endswith("url") else None
        for secret in (value, parts and parts.path, parts and parts.query):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "[redacted]")
    return text


# ---------------------------------------------------------------------------------------------
# HTTP: no proxies, no redirects, and sockets only to the addresses just checked.


def _post(url: str, field: str, body: bytes, payload: dict, headers: dict | None = None) -> Sent:
    addresses = outbound_addresses(url, field)  # again before every send: DNS can change
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - http(s) only, checked above
    request.add_header("Content-Type", "application/json")
    request.add_header("Idempotency-Key", str(payload.get("idempotency_key", "")))
    request.add_header("User-Agent", USER_AGENT)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    timeout = settings.SMOTRA.alerts.delivery_timeout
    try:
        with _opener(addresses).open(request, timeout=timeout) as response:
            return Sent(status_code=response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return Sent(status_code=exc.code, error=_http_error(exc.code))
    except (OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            return Sent(error=f"No answer within {timeout:g} s (alerts.delivery_timeout).")
        return Sent(error=f"Could not send: {reason}")


def _http_error(code: int) -> str:
    if 300 <= code < 400:
        return f"HTTP {code}: redirects are not followed (one could point inside the network)."
    return f"HTTP {code}."


class _PinnedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, addresses: list[str]):
        super().__init__()
        self.addresses = addresses

    def http_open(self, req):
        return self.do_open(_pinned(http.client.HTTPConnection, self.addresses), req)


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, addresses: list[str]):
        self.context = ssl.create_default_context()
        super().__init__(context=self.context)
        self.addresses = addresses

    def https_open(self, req):
        return self.do_open(_pinned(http.client.HTTPSConnection, self.addresses), req, context=self.context)


def _opener(addresses: list[str]) -> urllib.request.OpenerDirector:
    """http and https only, to ``addresses`` only; no proxies (they would send elsewhere than the
    addresses checked) and no redirect handler, so a 3xx is raised as an HTTPError."""
    opener = urllib.request.OpenerDirector()
    handlers = [
        _PinnedHTTPHandler(addresses),
        _PinnedHTTPSHandler(addresses),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.UnknownHandler(),
    ]
    for handler in handlers:
        opener.add_handler(handler)
    return opener


def _pinned(connection_class, addresses: list[str]):
    """A connection factory for ``do_open`` whose sockets go to ``addresses``; the Host header, TLS
    SNI and certificate check still use the URL's host name."""

    def make(host, **kwargs):
        connection = connection_class(host, **kwargs)
        # http.client keeps its socket opener in this attribute precisely so it can be replaced.
        connection._create_connection = functools.partial(_connect_any, addresses)
        return connection

    return make


def _connect_any(addresses: list[str], target, timeout, source_address=None) -> socket.socket:
    error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, target[1]), timeout, source_address)
        except OSError as exc:
            error = exc
    raise error or OSError("no address to connect to")


# ---------------------------------------------------------------------------------------------
# What each channel type shows, all rendered from the frozen payload.


def summary_of(payload: dict) -> str:
    """One line for humans: ``[CRITICAL] api.example.com:443 unreachable — opened``."""
    alert = payload.get("alert")
    if not alert:
        return "[TEST] Test notification from Smotra"
    title = " ".join(str(alert.get("title") or "Incident").split())  # no newlines into subjects
    return f"[{str(alert.get('severity', 'info')).upper()}] {title} — {_event_word(payload)}"


def _event_word(payload: dict) -> str:
    return str(payload.get("event", "")).removeprefix("alert.")


def details_of(payload: dict) -> list[str]:
    """The essentials under the summary, one per line."""
    alert = payload.get("alert")
    if not alert:
        return ["The channel works: this is a test notification.", f"Sent at {payload.get('sent_at')}"]
    lines = [alert["description"]] if alert.get("description") else []
    if alert.get("target"):
        lines.append(f"Target: {alert['target']}")
    if alert.get("current_value") is not None:
        lines.append(f"Value: {alert['current_value']:g} (threshold {alert.get('threshold_value')})")
    if alert.get("failing_agents"):
        lines.append(f"Failing agents: {len(alert['failing_agents'])}")
    if payload.get("rule"):
        lines.append(f"Rule: {payload['rule'].get('name')}")
    lines.append(f"Status: {alert.get('status')} (incident {alert.get('id')})")
    lines.append(f"Sent at {payload.get('sent_at')}")
    return lines


def _color(payload: dict) -> int:
    alert = payload.get("alert") or {}
    if payload.get("event") == "alert.resolved":
        return COLORS["resolved"]
    return COLORS.get(alert.get("severity"), COLORS["info"])


def _mrkdwn(text: str) -> str:
    # Slack reads <...> as links and mentions (<!channel>): user-supplied titles must not ping anyone.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(payload: dict) -> dict:
    summary = _mrkdwn(summary_of(payload))
    text = "\n".join([f"*{summary}*", *map(_mrkdwn, details_of(payload))])
    return {"text": summary, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]}


def discord_body(payload: dict) -> dict:
    summary = summary_of(payload)
    embed = {"title": summary[:256], "description": "\n".join(details_of(payload))[:4096], "color": _color(payload)}
    # Titles come from users: an "@everyone" in one must not ping the whole server.
    return {"content": summary[:2000], "embeds": [embed], "allowed_mentions": {"parse": []}}


def teams_body(payload: dict) -> dict:
    summary = summary_of(payload)
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": summary,
        "themeColor": f"{_color(payload):06X}",
        "title": summary,
        "text": "\n\n".join(details_of(payload)),
    }


def pagerduty_body(routing_key: str, payload: dict) -> dict:
    """An Events API v2 event; ``dedup_key`` is stable per incident, so acknowledge and resolve close
    the alert that trigger opened."""
    alert = payload.get("alert")
    action = PAGERDUTY_ACTIONS.get(payload.get("event"), "trigger")
    dedup_key = f"smotra-{alert['id']}" if alert else f"smotra-test-{payload.get('idempotency_key')}"
    body = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key}
    if action == "trigger":
        body["payload"] = {
            "summary": summary_of(payload)[:1024],
            "source": "smotra",
            "severity": (alert or {}).get("severity", "info"),
            "timestamp": payload.get("sent_at"),
            "custom_details": alert or {"message": "Test notification from Smotra"},
        }
    return body


def email_subject(payload: dict) -> str:
    alert = payload.get("alert")
    if not alert:
        return "[Smotra] Test notification"
    title = " ".join(str(alert.get("title") or "Incident").split())
    return f"[Smotra] {str(alert.get('severity', 'info')).upper()}: {title} ({_event_word(payload)})"


def email_body(payload: dict) -> str:
    lines = [summary_of(payload), "", *details_of(payload), "", f"Idempotency key: {payload.get('idempotency_key')}"]
    return "\n".join(lines) + "\n"
