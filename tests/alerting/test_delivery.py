"""Delivery of the outbox (alerting.delivery) to a local receiver: what each channel type sends, retries
with backoff and one idempotency key, leases of crashed workers, concurrent workers (PostgreSQL),
redirects, outbound targets (alerting.targets) and secrets kept out of errors and logs."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, connections
from prometheus_client import REGISTRY

from alerting import delivery
from alerting.delivery import backoff, deliver, deliver_due
from alerting.models import AlertRule, Channel, DeliveryAttempt, Incident, Notification
from alerting.services.notifications import notifications_enqueue
from alerting.services.notifications import test_notification as enqueue_test
from alerting.targets import validate_outbound_url
from smotra.errors import Invalid
from tests.alerting.receiver import Receiver
from tests.factories import TenantFactory

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "whsec-never-show-me"
TOKEN = "T0000/B0000/XXXXSLACKTOKEN"
ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345"
SUMMARY = "[CRITICAL] api.example.com:443 unreachable — opened"
SETTING = "alerts.allow_private_targets"


def configure_alerts(settings, **changes) -> None:
    settings.SMOTRA = replace(settings.SMOTRA, alerts=replace(settings.SMOTRA.alerts, **changes))


@pytest.fixture
def receiver(settings):
    """The receiver on 127.0.0.1, with private targets allowed so that the server may send to it."""
    configure_alerts(settings, allow_private_targets=True)
    with Receiver() as server:
        yield server


@pytest.fixture
def deny_private(settings):
    configure_alerts(settings, allow_private_targets=False)


@pytest.fixture
def tenant(db):
    return TenantFactory(name="Acme")


@pytest.fixture
def incident(tenant):
    rule = AlertRule.objects.create(tenant=tenant, name="API down", metric="status", severity="critical")
    return Incident.objects.create(
        tenant=tenant,
        rule=rule,
        kind="endpoint",
        severity="critical",
        title="api.example.com:443 unreachable",
        description="No agent in Zürich reached it.",
        target="api.example.com:443",
        failing_agents=["probe-a", "probe-b"],
        created_at=NOW,
    )


def channel_of(tenant, type: str, *, enabled: bool = True, **configuration) -> Channel:
    return Channel.objects.create(tenant=tenant, name=type, type=type, configuration=configuration, enabled=enabled)


def notify(incident: Incident, channel: Channel, event: str = "alert.opened") -> Notification:
    """The outbox row ``event`` writes for ``channel`` (through the service that writes the outbox)."""
    incident.rule.channels.set([channel])
    assert notifications_enqueue(incident, event, now=NOW) == 1
    return Notification.objects.get(channel=channel, event=event)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def counted(channel_type: str, outcome: str) -> float:
    labels = {"channel_type": channel_type, "outcome": outcome}
    return REGISTRY.get_sample_value("smotra_notifications_total", labels) or 0.0


# ---------------------------------------------------------------------------------------------
# Webhook: the payload, signed, with its idempotency key.


def test_webhook_posts_the_payload_signed_with_its_idempotency_key(receiver, incident):
    channel = channel_of(incident.tenant, "webhook", url=receiver.url + "/hooks/smotra", secret=SECRET)
    notification = notify(incident, channel)
    with time_machine.travel(NOW, tick=False):
        assert deliver_due() == 1

    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hooks/smotra")
    assert request.body == json.dumps(notification.payload, separators=(",", ":"), ensure_ascii=False).encode()
    assert request.json() == notification.payload
    assert request.json()["alert"]["id"] == str(incident.pk)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "Smotra"
    assert request.headers["idempotency-key"] == notification.payload["idempotency_key"]
    assert request.headers["idempotency-key"] == str(notification.idempotency_key)
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-smotra-signature"], expected)

    notification.refresh_from_db()
    assert (notification.status, notification.delivered_at, notification.attempts) == ("delivered", NOW, 0)
    assert (notification.leased_until, notification.last_error) == (None, "")
    [attempt] = notification.delivery_attempts.all()
    assert (attempt.outcome, attempt.status_code, attempt.error, attempt.at) == ("delivered", 200, "", NOW)
    assert attempt.duration_ms >= 0


def test_a_webhook_without_secret_is_not_signed(receiver, tenant):
    channel = channel_of(tenant, "webhook", url=receiver.url + "/hook")
    notification = enqueue_test(channel, now=NOW)
    attempt = deliver(notification)
    assert attempt.outcome == "delivered"
    [request] = receiver.requests
    assert "x-smotra-signature" not in request.headers
    assert request.json()["event"] == "test"
    assert request.json()["alert"] is None


def test_a_2xx_other_than_200_is_delivered(receiver, tenant):
    receiver.answer(204)
    notification = enqueue_test(channel_of(tenant, "webhook", url=receiver.url), now=NOW)
    assert (deliver(notification).outcome, notification.status) == ("delivered", "delivered")


# ---------------------------------------------------------------------------------------------
# Retries, giving up, leases.


def test_it_retries_with_backoff_and_the_same_key_until_delivered(receiver, incident):
    receiver.answer(500, 500, 200)
    notification = notify(incident, channel_of(incident.tenant, "webhook", url=receiver.url + "/hook"))
    with time_machine.travel(NOW, tick=False) as traveller:
        assert deliver_due() == 1
        notification.refresh_from_db()
        assert (notification.status, notification.attempts) == ("pending", 1)
        assert (notification.next_attempt_at, notification.last_error) == (NOW + timedelta(seconds=10), "HTTP 500.")
        assert deliver_due() == 0  # not due again yet
        traveller.shift(timedelta(seconds=10))
        assert deliver_due() == 1
        notification.refresh_from_db()
        assert (notification.attempts, notification.next_attempt_at) == (2, NOW + timedelta(seconds=30))
        traveller.shift(timedelta(seconds=20))
        assert deliver_due() == 1

    notification.refresh_from_db()
    assert (notification.status, notification.delivered_at) == ("delivered", NOW + timedelta(seconds=30))
    assert (notification.leased_until, notification.last_error) == (None, "")
    keys = [request.headers["idempotency-key"] for request in receiver.requests]
    assert keys == [str(notification.idempotency_key)] * 3
    attempts = notification.delivery_attempts.values_list("at", "status_code", "outcome")
    assert list(attempts) == [
        (NOW, 500, "failed"),
        (NOW + timedelta(seconds=10), 500, "failed"),
        (NOW + timedelta(seconds=30), 200, "delivered"),
    ]


def test_it_gives_up_after_max_delivery_attempts(receiver, incident, settings):
    assert settings.SMOTRA.alerts.max_delivery_attempts == 8
    receiver.default_status = 503
    notification = notify(incident, channel_of(incident.tenant, "webhook", url=receiver.url))
    waits = []
    with time_machine.travel(NOW, tick=False) as traveller:
        for _ in range(8):
            assert deliver_due() == 1
            notification.refresh_from_db()
            waits.append((notification.next_attempt_at - datetime.now(UTC)).total_seconds())
            traveller.move_to(notification.next_attempt_at)
        traveller.shift(timedelta(days=1))
        assert deliver_due() == 0

    assert waits[:7] == [10, 20, 40, 80, 160, 320, 640]
    assert (notification.status, notification.attempts, notification.last_error) == ("failed", 8, "HTTP 503.")
    assert notification.delivery_attempts.filter(outcome="failed").count() == 8
    assert len(receiver.requests) == 8


def test_max_delivery_attempts_follows_the_configuration(receiver, tenant, settings):
    configure_alerts(settings, max_delivery_attempts=1)
    receiver.answer(500)
    notification = enqueue_test(channel_of(tenant, "webhook", url=receiver.url), now=NOW)
    deliver(notification)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("failed", 1)


def test_backoff_doubles_from_ten_seconds_and_is_capped_at_an_hour():
    waits = [backoff(attempts).total_seconds() for attempts in range(1, 13)]
    assert waits == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600]


def test_a_lease_left_by_a_crashed_worker_expires_and_the_next_pass_delivers(receiver, incident, monkeypatch):
    notification = notify(incident, channel_of(incident.tenant, "webhook", url=receiver.url + "/hook"))

    class WorkerDied(Exception):
        pass

    def die(*args, **kwargs):
        raise WorkerDied  # after the send, before anything was recorded

    with time_machine.travel(NOW, tick=False) as traveller:
        monkeypatch.setattr(delivery, "_settle", die)
        with pytest.raises(WorkerDied):
            deliver_due()
        monkeypatch.undo()
        notification.refresh_from_db()
        # delivery_timeout (5 s) + 30 s
        assert (notification.status, notification.leased_until) == ("pending", NOW + timedelta(seconds=35))
        assert not notification.delivery_attempts.exists()
        traveller.shift(timedelta(seconds=35))
        assert deliver_due() == 0  # the lease still holds
        traveller.shift(timedelta(seconds=1))
        assert deliver_due() == 1

    notification.refresh_from_db()
    assert (notification.status, notification.leased_until) == ("delivered", None)
    assert [request.headers["idempotency-key"] for request in receiver.requests] == [
        str(notification.idempotency_key)
    ] * 2
    assert notification.delivery_attempts.count() == 1


def test_deliver_due_sends_only_due_pending_notifications_up_to_its_limit(receiver, tenant):
    channel = channel_of(tenant, "webhook", url=receiver.url)
    due = [enqueue_test(channel, now=NOW) for _ in range(3)]
    later = enqueue_test(channel, now=NOW + timedelta(minutes=5))
    for status in ("delivered", "failed", "suppressed"):
        Notification.objects.filter(pk=enqueue_test(channel, now=NOW).pk).update(status=status)

    with time_machine.travel(NOW, tick=False):
        assert deliver_due(limit=2) == 2
        assert deliver_due(limit=2) == 1
        assert deliver_due() == 0
    sent = {request.headers["idempotency-key"] for request in receiver.requests}
    assert sent == {str(notification.idempotency_key) for notification in due}
    assert deliver_due(now=NOW + timedelta(minutes=5)) == 1
    assert receiver.requests[-1].headers["idempotency-key"] == str(later.idempotency_key)


@pytest.fixture
def on_postgres(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has a single writer: concurrent claims need PostgreSQL")


def test_concurrent_workers_send_each_notification_exactly_once(on_postgres, receiver):
    channel = channel_of(TenantFactory(name="Race"), "webhook", url=receiver.url + "/race")
    notifications = [enqueue_test(channel, now=NOW) for _ in range(40)]
    receiver.hang = 0.01  # sends overlap, so the workers claim side by side
    workers = 4
    start = threading.Barrier(workers)

    def work(_) -> int:
        try:
            start.wait()
            return deliver_due()
        finally:
            connections.close_all()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=workers) as pool:
        counts = list(pool.map(work, range(workers)))

    assert sum(counts) == 40
    assert sum(1 for count in counts if count) >= 2, counts
    keys = sorted(request.headers["idempotency-key"] for request in receiver.requests)
    assert keys == sorted(str(notification.idempotency_key) for notification in notifications)
    assert Notification.objects.filter(status="delivered", leased_until=None).count() == 40
    assert DeliveryAttempt.objects.filter(outcome="delivered").count() == 40


# ---------------------------------------------------------------------------------------------
# Failures of a send.


def test_a_disabled_channel_fails_the_notification_without_sending(receiver, tenant):
    channel = channel_of(tenant, "webhook", url=receiver.url)
    notification = enqueue_test(channel, now=NOW)
    Channel.objects.filter(pk=channel.pk).update(enabled=False)
    with time_machine.travel(NOW, tick=False):
        assert deliver_due() == 1
    notification.refresh_from_db()
    assert (notification.status, notification.attempts, notification.leased_until) == ("failed", 1, None)
    assert "disabled" in notification.last_error
    [attempt] = notification.delivery_attempts.all()
    assert (attempt.outcome, attempt.status_code) == ("failed", None)
    assert receiver.requests == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failure_and_is_not_followed(receiver, tenant, status):
    receiver.answer(status)
    notification = enqueue_test(channel_of(tenant, "webhook", url=receiver.url + "/hook"), now=NOW)
    attempt = deliver(notification, now=NOW)
    assert (attempt.outcome, attempt.status_code) == ("failed", status)
    assert "redirects are not followed" in attempt.error
    assert [request.path for request in receiver.requests] == ["/hook"]
    assert (notification.status, notification.attempts) == ("pending", 1)


def test_no_answer_within_the_delivery_timeout_is_a_failure(receiver, tenant, settings):
    configure_alerts(settings, allow_private_targets=True, delivery_timeout=0.3)
    receiver.hang = 5
    notification = enqueue_test(channel_of(tenant, "webhook", url=receiver.url), now=NOW)
    attempt = deliver(notification)
    assert (attempt.outcome, attempt.status_code) == ("failed", None)
    assert attempt.error == "No answer within 0.3 s (alerts.delivery_timeout)."
    assert attempt.duration_ms < 3000


def test_a_refused_connection_is_a_failure(receiver, tenant):
    notification = enqueue_test(channel_of(tenant, "webhook", url=f"http://127.0.0.1:{closed_port()}/"), now=NOW)
    attempt = deliver(notification)
    assert (attempt.outcome, attempt.status_code) == ("failed", None)
    assert "Connection refused" in attempt.error


def test_an_https_target_is_sent_over_tls(receiver, tenant):
    # The receiver speaks plain HTTP: the TLS handshake fails, and nothing is sent in clear.
    notification = enqueue_test(channel_of(tenant, "webhook", url=f"https://127.0.0.1:{receiver.port}/"), now=NOW)
    attempt = deliver(notification)
    assert (attempt.outcome, attempt.status_code) == ("failed", None)
    assert "SSL" in attempt.error
    assert receiver.requests == []


def test_a_missing_configuration_key_is_a_failure(receiver, tenant):
    notification = enqueue_test(channel_of(tenant, "slack"), now=NOW)
    assert deliver(notification).error == "The channel configuration has no webhook_url."


def test_every_attempt_is_counted_by_channel_type_and_outcome(receiver, tenant):
    receiver.answer(500, 200)
    before = counted("webhook", "failed"), counted("webhook", "delivered")
    notification = enqueue_test(channel_of(tenant, "webhook", url=receiver.url), now=NOW)
    deliver(notification)
    deliver(notification)
    assert (counted("webhook", "failed"), counted("webhook", "delivered")) == (before[0] + 1, before[1] + 1)
    # Every series exists from the start, at 0 until its first attempt.
    assert (
        REGISTRY.get_sample_value("smotra_notifications_total", {"channel_type": "teams", "outcome": "failed"})
        is not None
    )


# ---------------------------------------------------------------------------------------------
# Outbound targets.

PRIVATE_TARGETS = [
    "http://127.0.0.1/",
    "http://10.0.0.1/",
    "http://[::1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://0.0.0.0/",
    "http://localhost:8080/",
    "http://192.168.1.1/",
    "https://172.16.0.1/",
    "http://224.0.0.1/",
    "http://100.100.100.200/",  # shared address space: Alibaba Cloud's metadata service
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://2130706433/",  # 127.0.0.1 in one decimal number
]


@pytest.mark.parametrize("url", PRIVATE_TARGETS)
def test_private_targets_are_refused_by_default(deny_private, url):
    with pytest.raises(Invalid) as refused:
        validate_outbound_url(url, "url")
    assert (refused.value.field, refused.value.code, refused.value.status) == ("url", "validation_error", 400)
    assert SETTING in refused.value.message


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://10.0.0.1/", "http://[::1]/"])
def test_private_targets_are_allowed_when_configured(settings, url):
    configure_alerts(settings, allow_private_targets=True)
    assert validate_outbound_url(url, "url") == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.com/", "must be an http or https URL"),
        ("file:///etc/passwd", "must be an http or https URL"),
        ("javascript:alert(1)", "must be an http or https URL"),
        ("example.com/hook", "must be an http or https URL"),
        ("http:///no-host", "must name a host"),
        ("http://example.com:99999/", "is not a valid URL"),
        ("http://[::1/", "is not a valid URL"),
        ("http://exa mple.com/", "must not contain spaces or control characters"),
        ("http://example.com/\nHost: evil", "must not contain spaces or control characters"),
        ("", "must be a URL"),
        (None, "must be a URL"),
    ],
)
def test_malformed_urls_are_refused_naming_the_field(deny_private, url, problem):
    with pytest.raises(Invalid) as refused:
        validate_outbound_url(url, "webhook_url")
    assert refused.value.field == "webhook_url"
    assert refused.value.message.startswith("webhook_url")
    assert problem in refused.value.message


def resolving(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Make ``socket.getaddrinfo`` resolve the names in ``answers``: each call takes the next address
    (the last one sticks); other names resolve as usual. Returns the names asked, in order."""
    real, asked = socket.getaddrinfo, []

    def fake(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        queue = answers[host]
        if not queue:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        return real(address, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


def test_an_unresolvable_host_is_refused(deny_private, monkeypatch):
    resolving(monkeypatch, {"nowhere.example": []})
    with pytest.raises(Invalid) as refused:
        validate_outbound_url("https://nowhere.example/hook", "url")
    assert refused.value.field == "url"
    assert refused.value.message == "url: the host nowhere.example cannot be resolved."


def test_a_name_that_resolves_inside_the_network_is_refused(deny_private, monkeypatch):
    resolving(monkeypatch, {"hooks.example.com": ["10.20.30.40"]})
    with pytest.raises(Invalid) as refused:
        validate_outbound_url("https://hooks.example.com/x", "url")
    assert "hooks.example.com (which resolves to 10.20.30.40), a private address" in refused.value.message
    assert SETTING in refused.value.message


def test_a_public_name_is_accepted_and_checked_again_at_every_send(deny_private, tenant, monkeypatch):
    asked = resolving(monkeypatch, {"hooks.example.com": ["93.184.216.34", "10.0.0.7"]})
    url = "https://hooks.example.com/hook"
    assert validate_outbound_url(url, "url") == url
    # The name now resolves inside the network: the send is refused before any connection.
    notification = enqueue_test(channel_of(tenant, "webhook", url=url), now=NOW)
    attempt = deliver(notification)
    assert (attempt.outcome, attempt.status_code) == ("failed", None)
    assert "resolves to 10.0.0.7" in attempt.error
    assert SETTING in attempt.error
    assert asked == ["hooks.example.com", "hooks.example.com"]


def test_a_private_target_is_refused_at_send_by_default(receiver, tenant, settings):
    configure_alerts(settings, allow_private_targets=False)
    notification = enqueue_test(channel_of(tenant, "webhook", url=receiver.url + "/hook"), now=NOW)
    attempt = deliver(notification)
    assert attempt.outcome == "failed"
    assert SETTING in attempt.error
    assert receiver.requests == []


def test_the_send_connects_only_to_the_address_checked(receiver, tenant, monkeypatch):
    # Rebinding: resolved again by the connection, the name would now lead to 127.0.0.2, where
    # nothing listens; the send goes to the address checked, with the URL's name as Host.
    asked = resolving(monkeypatch, {"rebind.test": ["127.0.0.1", "127.0.0.2"]})
    url = f"http://rebind.test:{receiver.port}/hook"
    notification = enqueue_test(channel_of(tenant, "webhook", url=url), now=NOW)
    assert deliver(notification).outcome == "delivered"
    assert asked == ["rebind.test"]
    [request] = receiver.requests
    assert request.headers["host"] == f"rebind.test:{receiver.port}"


# ---------------------------------------------------------------------------------------------
# Chat channels and PagerDuty.


def test_slack_gets_an_incoming_webhook_message(receiver, incident):
    channel = channel_of(incident.tenant, "slack", webhook_url=f"{receiver.url}/services/{TOKEN}")
    notification = notify(incident, channel)
    assert deliver(notification).outcome == "delivered"
    [request] = receiver.requests
    assert request.path == f"/services/{TOKEN}"
    assert request.headers["idempotency-key"] == str(notification.idempotency_key)
    body = request.json()
    assert body["text"] == SUMMARY
    [block] = body["blocks"]
    assert (block["type"], block["text"]["type"]) == ("section", "mrkdwn")
    assert block["text"]["text"].startswith(f"*{SUMMARY}*\nNo agent in Zürich reached it.\n")
    assert "Target: api.example.com:443" in block["text"]["text"]


def test_slack_escapes_user_text_so_it_cannot_mention_anyone(receiver, incident):
    Incident.objects.filter(pk=incident.pk).update(title="<!channel> down & out")
    incident.refresh_from_db()
    notification = notify(incident, channel_of(incident.tenant, "slack", webhook_url=receiver.url))
    deliver(notification)
    body = receiver.requests[0].json()
    assert body["text"] == "[CRITICAL] &lt;!channel&gt; down &amp; out — opened"
    assert "<!channel>" not in json.dumps(body)


def test_discord_gets_content_and_an_embed(receiver, incident):
    channel = channel_of(incident.tenant, "discord", webhook_url=f"{receiver.url}/api/webhooks/1/{TOKEN}")
    notification = notify(incident, channel)
    assert deliver(notification).outcome == "delivered"
    [request] = receiver.requests
    assert request.headers["idempotency-key"] == str(notification.idempotency_key)
    body = request.json()
    assert body["content"] == SUMMARY
    [embed] = body["embeds"]
    assert (embed["title"], embed["color"]) == (SUMMARY, 0xD93025)
    assert embed["description"].startswith("No agent in Zürich reached it.\nTarget: api.example.com:443")
    assert body["allowed_mentions"] == {"parse": []}


def test_teams_gets_a_message_card(receiver, incident):
    channel = channel_of(incident.tenant, "teams", webhook_url=f"{receiver.url}/webhookb2/{TOKEN}")
    notification = notify(incident, channel, "alert.resolved")
    assert deliver(notification).outcome == "delivered"
    [request] = receiver.requests
    assert request.headers["idempotency-key"] == str(notification.idempotency_key)
    body = request.json()
    resolved = "[CRITICAL] api.example.com:443 unreachable — resolved"
    assert {key: body[key] for key in ("@type", "@context", "summary", "themeColor", "title")} == {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": resolved,
        "themeColor": "188038",
        "title": resolved,
    }
    assert "Target: api.example.com:443" in body["text"]


def test_pagerduty_triggers_acknowledges_and_resolves_one_alert(receiver, incident, settings):
    configure_alerts(settings, allow_private_targets=True, pagerduty_url=receiver.url + "/v2/enqueue")
    channel = channel_of(incident.tenant, "pagerduty", routing_key=ROUTING_KEY)
    events = ["alert.opened", "alert.reminder", "alert.acknowledged", "alert.resolved"]
    notifications = [notify(incident, channel, event) for event in events]
    for notification in notifications:
        assert deliver(notification).outcome == "delivered"

    assert [request.path for request in receiver.requests] == ["/v2/enqueue"] * 4
    bodies = [request.json() for request in receiver.requests]
    assert [body["event_action"] for body in bodies] == ["trigger", "trigger", "acknowledge", "resolve"]
    assert {body["dedup_key"] for body in bodies} == {f"smotra-{incident.pk}"}
    assert {body["routing_key"] for body in bodies} == {ROUTING_KEY}
    assert bodies[0]["payload"] == {
        "summary": SUMMARY,
        "source": "smotra",
        "severity": "critical",
        "timestamp": notifications[0].payload["sent_at"],
        "custom_details": notifications[0].payload["alert"],
    }
    assert bodies[1]["payload"]["summary"] == "[CRITICAL] api.example.com:443 unreachable — reminder"
    assert "payload" not in bodies[2]
    assert "payload" not in bodies[3]
    keys = [request.headers["idempotency-key"] for request in receiver.requests]
    assert keys == [str(notification.idempotency_key) for notification in notifications]


def test_a_pagerduty_test_has_its_own_dedup_key(receiver, tenant, settings):
    configure_alerts(settings, allow_private_targets=True, pagerduty_url=receiver.url + "/v2/enqueue")
    notification = enqueue_test(channel_of(tenant, "pagerduty", routing_key=ROUTING_KEY), now=NOW)
    deliver(notification)
    body = receiver.requests[0].json()
    assert (body["event_action"], body["dedup_key"]) == ("trigger", f"smotra-test-{notification.idempotency_key}")
    assert (body["payload"]["severity"], body["payload"]["source"]) == ("info", "smotra")


# ---------------------------------------------------------------------------------------------
# Email.


def test_email_is_sent_to_the_recipients(incident, mailoutbox, settings):
    recipients = ["ops@example.com", "oncall@example.com"]
    notification = notify(incident, channel_of(incident.tenant, "email", recipients=recipients))
    attempt = deliver(notification, now=NOW)
    assert (attempt.outcome, attempt.status_code, notification.status) == ("delivered", None, "delivered")
    [message] = mailoutbox
    assert message.subject == "[Smotra] CRITICAL: api.example.com:443 unreachable (opened)"
    assert (message.to, message.from_email) == (recipients, settings.DEFAULT_FROM_EMAIL)
    assert message.body.startswith(f"{SUMMARY}\n\nNo agent in Zürich reached it.\n")
    assert "Target: api.example.com:443" in message.body
    assert str(notification.idempotency_key) in message.body


def test_an_email_that_cannot_be_sent_is_a_failed_attempt(incident, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    notification = notify(incident, channel_of(incident.tenant, "email", recipients=["ops@example.com"]))
    attempt = deliver(notification, now=NOW)
    assert (attempt.outcome, notification.status, notification.attempts) == ("failed", "pending", 1)
    assert attempt.error.startswith("ConnectionRefusedError")


def test_an_email_channel_without_recipients_fails(incident, mailoutbox):
    notification = enqueue_test(channel_of(incident.tenant, "email", recipients=[]), now=NOW)
    assert deliver(notification).error == "The channel configuration has no recipients."
    assert mailoutbox == []


# ---------------------------------------------------------------------------------------------
# Secrets stay out of errors and logs.


def secret_channel(tenant, kind: str, url: str) -> Channel:
    if kind == "webhook":
        return channel_of(tenant, kind, url=f"{url}/hooks/{TOKEN}", secret=SECRET)
    if kind == "pagerduty":
        return channel_of(tenant, kind, routing_key=ROUTING_KEY)
    return channel_of(tenant, kind, webhook_url=f"{url}/services/{TOKEN}")


@pytest.mark.parametrize("failure", ["http_500", "timeout", "refused", "private"])
@pytest.mark.parametrize("kind", ["webhook", "slack", "discord", "teams", "pagerduty"])
def test_errors_and_logs_never_show_secrets(receiver, tenant, settings, caplog, kind, failure):
    caplog.set_level(logging.INFO, logger="smotra.alerts")
    url = f"http://127.0.0.1:{closed_port()}" if failure == "refused" else receiver.url
    configure_alerts(
        settings,
        allow_private_targets=failure != "private",
        delivery_timeout=0.3,
        pagerduty_url=f"{url}/v2/enqueue",
    )
    receiver.answer(500)
    receiver.hang = 5 if failure == "timeout" else 0
    channel = secret_channel(tenant, kind, url)
    notification = enqueue_test(channel, now=NOW)

    attempt = deliver(notification)

    assert attempt.outcome == "failed"
    notification.refresh_from_db()
    for text in (attempt.error, notification.last_error, caplog.text):
        for secret in (TOKEN, "XXXXSLACKTOKEN", SECRET, ROUTING_KEY, url + "/"):
            assert secret not in text, (secret, text)
    assert f"channel {channel.pk} ({kind}) failed" in caplog.text
