"""{prefix}/channels: admins manage notification channels, viewers see them with every secret masked;
outbound URLs are public unless alerts.allow_private_targets; POST /channels/{id}/test sends now."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alerting.models import Channel, DeliveryAttempt, Notification
from tenants.models import AuditEvent
from tests.alerting.objects import channel_of
from tests.api_cases import MISSING, ResourceAPICases

pytestmark = pytest.mark.django_db

URL = "/api/v1/channels"
# Names the tests resolve without DNS (see fake_dns); anything else resolves for real.
HOSTS = {
    "hooks.example.com": "93.184.215.14",
    "hooks.slack.com": "54.230.100.1",
    "discord.com": "162.159.128.233",
    "acme.webhook.office.com": "52.96.0.10",
    "intranet.example.com": "10.1.2.3",
}
WEBHOOK = {"url": "https://hooks.example.com/smotra", "secret": "hmac-secret-1234"}
SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefghwxyz"


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        return real(HOSTS.get(host, host), port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def allow_private(settings):
    settings.SMOTRA = replace(settings.SMOTRA, alerts=replace(settings.SMOTRA.alerts, allow_private_targets=True))


@pytest.fixture
def webhook_a(tenant_a):
    return channel_of(tenant_a, name="ops hook", **WEBHOOK)


def _fields(configuration: dict, **changes) -> dict:
    return {key: value for key, value in {**configuration, **changes}.items() if value is not MISSING}


class TestChannelsAPI(ResourceAPICases):
    """401, cross-tenant, viewer/operator, bad-input, pagination and verb cases (tests/api_cases.py)."""

    path = "/channels"
    items_key = "channels"
    model = Channel
    actions = ("test",)
    write_role = "admin"
    create_in_other_tenant = (400, "validation_error", "tenant_id")
    bad_bodies = [
        ("bad-tenant-id", {"tenant_id": "nope"}, "tenant_id"),
        ("no-name", {"name": MISSING}, "name"),
        ("empty-name", {"name": ""}, "name"),
        ("long-name", {"name": "x" * 201}, "name"),
        ("no-type", {"type": MISSING}, "type"),
        ("unknown-type", {"type": "sms"}, "type"),
        ("null-type", {"type": None}, "type"),
        ("no-configuration", {"configuration": MISSING}, "configuration"),
        ("configuration-a-string", {"configuration": "https://hooks.example.com"}, "configuration"),
        ("null-configuration", {"configuration": None}, "configuration"),
        ("no-url", {"configuration": {"secret": "x"}}, "configuration.url"),
        ("url-a-number", {"configuration": {"url": 42}}, "configuration.url"),
        ("empty-url", {"configuration": {"url": ""}}, "configuration.url"),
        ("ftp-url", {"configuration": {"url": "ftp://hooks.example.com/x"}}, "configuration.url"),
        ("url-without-host", {"configuration": {"url": "https:///x"}}, "configuration.url"),
        ("url-with-space", {"configuration": {"url": "https://hooks.example.com/a b"}}, "configuration.url"),
        ("url-too-long", {"configuration": {"url": "https://hooks.example.com/" + "x" * 2048}}, "configuration.url"),
        ("unresolvable-url", {"configuration": {"url": "https://no-such-host.invalid/"}}, "configuration.url"),
        ("private-url", {"configuration": {"url": "http://10.0.0.7/hook"}}, "configuration.url"),
        ("name-of-a-private-host", {"configuration": {"url": "https://intranet.example.com/"}}, "configuration.url"),
        ("secret-a-number", {"configuration": _fields(WEBHOOK, secret=1234)}, "configuration.secret"),
        ("long-secret", {"configuration": _fields(WEBHOOK, secret="x" * 257)}, "configuration.secret"),
        ("secret-with-a-nul", {"configuration": _fields(WEBHOOK, secret="a\x00b")}, "configuration.secret"),
        ("name-with-a-nul", {"name": "a\x00b"}, "name"),
        ("unknown-key", {"configuration": _fields(WEBHOOK, colour="red")}, "configuration.colour"),
        ("key-of-another-type", {"configuration": _fields(WEBHOOK, routing_key="k")}, "configuration.routing_key"),
        ("email-with-a-url", {"type": "email", "configuration": {"url": WEBHOOK["url"]}}, "configuration.url"),
        ("email-no-recipients", {"type": "email", "configuration": {}}, "configuration.recipients"),
        ("email-empty-list", {"type": "email", "configuration": {"recipients": []}}, "configuration.recipients"),
        ("email-a-string", {"type": "email", "configuration": {"recipients": "a@b.c"}}, "configuration.recipients"),
        (
            "email-too-many",
            {"type": "email", "configuration": {"recipients": [f"u{n}@example.com" for n in range(51)]}},
            "configuration.recipients",
        ),
        (
            "email-bad-second-address",
            {"type": "email", "configuration": {"recipients": ["noc@example.com", "not-an-address"]}},
            "configuration.recipients[1]",
        ),
        (
            "email-address-a-number",
            {"type": "email", "configuration": {"recipients": [7]}},
            "configuration.recipients[0]",
        ),
        ("slack-no-webhook-url", {"type": "slack", "configuration": {}}, "configuration.webhook_url"),
        (
            "slack-private-url",
            {"type": "slack", "configuration": {"webhook_url": "http://127.0.0.1:9/x"}},
            "configuration.webhook_url",
        ),
        ("discord-url-key", {"type": "discord", "configuration": {"url": SLACK_URL}}, "configuration.url"),
        ("pagerduty-no-key", {"type": "pagerduty", "configuration": {}}, "configuration.routing_key"),
        (
            "pagerduty-long-key",
            {"type": "pagerduty", "configuration": {"routing_key": "k" * 65}},
            "configuration.routing_key",
        ),
        (
            "pagerduty-key-with-space",
            {"type": "pagerduty", "configuration": {"routing_key": "abc def"}},
            "configuration.routing_key",
        ),
        (
            "pagerduty-empty-key",
            {"type": "pagerduty", "configuration": {"routing_key": ""}},
            "configuration.routing_key",
        ),
        ("enabled-a-string", {"enabled": "true"}, "enabled"),
    ]
    bad_changes = [
        ("empty-name", {"name": ""}, "name"),
        ("another-type", {"type": "slack"}, "type"),
        ("unknown-type", {"type": "sms"}, "type"),
        ("configuration-a-list", {"configuration": []}, "configuration"),
        ("unknown-key", {"configuration": {"colour": "red"}}, "configuration.colour"),
        ("private-url", {"configuration": {"url": "http://169.254.169.254/latest/meta-data"}}, "configuration.url"),
        ("url-a-number", {"configuration": {"url": 1}}, "configuration.url"),
        # The rename is valid but must be rolled back with the refused URL.
        (
            "rename-with-private-url",
            {"name": "renamed", "configuration": {"url": "http://[::1]/"}},
            "configuration.url",
        ),
        ("enabled-a-number", {"enabled": 0}, "enabled"),
    ]

    @pytest.fixture
    def object_a(self, webhook_a):
        return webhook_a

    @pytest.fixture
    def object_b(self, tenant_b):
        return channel_of(tenant_b, name="bobs")

    @pytest.fixture
    def create_body(self, tenant_a):
        return {"tenant_id": str(tenant_a.pk), "name": "hook", "type": "webhook", "configuration": dict(WEBHOOK)}

    @pytest.fixture
    def update_body(self):
        return {"name": "renamed", "enabled": False}


# ---------------------------------------------------------------------------------------------
# Secrets are masked in every answer, and kept when a change leaves them out

# type -> (configuration sent, configuration answered, the secrets that must never be answered)
TYPES = {
    "webhook": (WEBHOOK, {"url": WEBHOOK["url"], "secret_set": True}, [WEBHOOK["secret"]]),
    "slack": (
        {"webhook_url": SLACK_URL},
        {"webhook_url": "https://hooks.slack.com", "webhook_url_set": True},
        ["XXXXXXXXXXXXXXXX", "/services/"],
    ),
    "discord": (
        {"webhook_url": "https://discord.com/api/webhooks/123/tok-en_secret"},
        {"webhook_url": "https://discord.com", "webhook_url_set": True},
        ["tok-en_secret", "/api/webhooks/"],
    ),
    "teams": (
        {"webhook_url": "https://acme.webhook.office.com/webhookb2/abc@def/IncomingWebhook/t0ken"},
        {"webhook_url": "https://acme.webhook.office.com", "webhook_url_set": True},
        ["t0ken", "webhookb2"],
    ),
    "pagerduty": ({"routing_key": ROUTING_KEY}, {"routing_key_hint": "…wxyz"}, [ROUTING_KEY, ROUTING_KEY[:-4]]),
    "email": ({"recipients": ["noc@example.com"]}, {"recipients": ["noc@example.com"]}, []),
}


def _leaks(response, secrets: list[str]) -> list[str]:
    text = response.content.decode()
    return [secret for secret in secrets if secret in text]


@pytest.mark.parametrize("channel_type", TYPES)
def test_every_answer_masks_the_secrets(client_for, alice, vera, tenant_a, channel_type):
    sent, answered, secrets = TYPES[channel_type]
    body = {"tenant_id": str(tenant_a.pk), "name": f"my {channel_type}", "type": channel_type, "configuration": sent}
    admin, viewer = client_for(alice), client_for(vera)
    created = admin.post(URL, body, format="json")
    assert created.status_code == 201, created.content
    channel = Channel.objects.get(pk=created.json()["id"])
    assert channel.configuration == sent  # stored whole, for delivery
    detail = f"{URL}/{channel.pk}"
    answers = {
        "create": created,
        "list": viewer.get(URL),
        "retrieve": viewer.get(detail),
        "patch": admin.patch(detail, {"name": "renamed"}, format="json"),
    }
    for name, response in answers.items():
        assert response.status_code in (200, 201), (name, response.content)
        assert not _leaks(response, secrets), name
        item = response.json()["channels"][0] if name == "list" else response.json()
        assert item["configuration"] == answered, name
        assert (item["type"], item["tenant_id"]) == (channel_type, str(tenant_a.pk))
    assert not [event for event in AuditEvent.objects.values_list("details", flat=True) if _in(event, secrets)]


def _in(document, secrets: list[str]) -> bool:
    text = json.dumps(document)
    return any(secret in text for secret in secrets)


@pytest.mark.parametrize(
    ("channel_type", "change"),
    [
        ("webhook", {"url": "https://hooks.example.com/other"}),
        ("slack", {}),
        ("discord", {}),
        ("teams", {}),
        ("pagerduty", {}),
    ],
)
def test_a_change_without_the_secret_keeps_it(client_for, alice, tenant_a, channel_type, change):
    sent, answered, secrets = TYPES[channel_type]
    channel = channel_of(tenant_a, channel_type, **sent)
    response = client_for(alice).patch(
        f"{URL}/{channel.pk}", {"name": "renamed", "enabled": False, "configuration": change}, format="json"
    )
    assert response.status_code == 200, response.content
    channel.refresh_from_db()
    assert channel.configuration == {**sent, **change}
    assert (channel.name, channel.enabled) == ("renamed", False)
    assert response.json()["configuration"] == {**answered, **change}
    assert not _leaks(response, secrets)


def test_a_new_secret_replaces_the_old_and_an_empty_one_removes_it(client_for, alice, webhook_a):
    client = client_for(alice)
    response = client.patch(f"{URL}/{webhook_a.pk}", {"configuration": {"secret": "new-secret"}}, format="json")
    webhook_a.refresh_from_db()
    assert webhook_a.configuration == {"url": WEBHOOK["url"], "secret": "new-secret"}
    assert "new-secret" not in response.content.decode()
    response = client.patch(f"{URL}/{webhook_a.pk}", {"configuration": {"secret": ""}}, format="json")
    webhook_a.refresh_from_db()
    assert webhook_a.configuration == {"url": WEBHOOK["url"]}
    assert response.json()["configuration"] == {"url": WEBHOOK["url"], "secret_set": False}


def test_a_new_routing_key_shows_its_hint(client_for, alice, tenant_a):
    channel = channel_of(tenant_a, "pagerduty", routing_key=ROUTING_KEY)
    response = client_for(alice).patch(
        f"{URL}/{channel.pk}", {"configuration": {"routing_key": "another-routing-key-5678"}}, format="json"
    )
    assert response.json()["configuration"] == {"routing_key_hint": "…5678"}


def test_a_short_routing_key_gets_no_hint(client_for, vera, tenant_a):
    channel = channel_of(tenant_a, "pagerduty", routing_key="abcd")
    assert client_for(vera).get(f"{URL}/{channel.pk}").json()["configuration"] == {"routing_key_hint": "…"}


def test_the_same_type_in_a_change_is_no_change(client_for, alice, webhook_a):
    response = client_for(alice).patch(f"{URL}/{webhook_a.pk}", {"type": "webhook"}, format="json")
    assert (response.status_code, response.json()["type"]) == (200, "webhook")


def test_an_admin_deletes_a_channel_and_rules_stop_naming_it(client_for, alice, webhook_a):
    from tests.alerting.test_api_rules import rule_of

    rule = rule_of(webhook_a.tenant, channels=[webhook_a])
    assert client_for(alice).delete(f"{URL}/{webhook_a.pk}").status_code == 204
    assert list(rule.channels.all()) == []
    assert AuditEvent.objects.filter(action="channel.delete", actor=alice).exists()


# ---------------------------------------------------------------------------------------------
# Private targets


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.20.30.40/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://intranet.example.com/hook",
    ],
    ids=["loopback", "private", "ipv6-loopback", "metadata", "name-of-a-private-address"],
)
def test_private_targets_are_refused_by_default_naming_the_setting(
    client_for, alice, tenant_a, db_state, assert_error, url
):
    body = {"tenant_id": str(tenant_a.pk), "name": "internal", "type": "webhook", "configuration": {"url": url}}
    before = db_state()
    error = assert_error(client_for(alice).post(URL, body, format="json"), 400, "validation_error", "configuration.url")
    assert "alerts.allow_private_targets" in error["message"]
    assert db_state() == before


@pytest.mark.parametrize(
    ("channel_type", "configuration"),
    [
        ("webhook", {"url": "http://127.0.0.1:8080/hook"}),
        ("webhook", {"url": "http://10.20.30.40/hook"}),
        ("slack", {"webhook_url": "http://[::1]/hook"}),
        ("teams", {"webhook_url": "http://169.254.169.254/x"}),
    ],
    ids=["loopback", "private", "ipv6-loopback", "metadata"],
)
def test_private_targets_are_accepted_when_allowed(
    client_for, alice, tenant_a, allow_private, channel_type, configuration
):
    body = {"tenant_id": str(tenant_a.pk), "name": "internal", "type": channel_type, "configuration": configuration}
    response = client_for(alice).post(URL, body, format="json")
    assert response.status_code == 201, response.content
    assert Channel.objects.get(pk=response.json()["id"]).configuration == configuration


# ---------------------------------------------------------------------------------------------
# POST /channels/{id}/test against a receiver on 127.0.0.1


class _Receiver(ThreadingHTTPServer):
    """Records the requests it gets and answers each with ``status``."""

    daemon_threads = True

    def __init__(self, status: int):
        self.status, self.requests = status, []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(request, allow_private):
    server = _Receiver(getattr(request, "param", 200))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_test_notification_is_delivered_now(client_for, alice, tenant_a, receiver):
    channel = channel_of(tenant_a, url=receiver.url, secret="sig")
    response = client_for(alice).post(f"{URL}/{channel.pk}/test")
    assert response.status_code == 200, response.content
    assert response.json() == {"delivered": True, "status_code": 200, "error": ""}
    [(path, headers, body)] = receiver.requests
    assert (path, body["event"], body["alert"], body["tenant_id"]) == ("/hook", "test", None, str(tenant_a.pk))
    assert headers["X-Smotra-Signature"].startswith("sha256=")
    notification = Notification.objects.get(channel=channel)
    assert (notification.event, notification.status, notification.leased_until) == ("test", "delivered", None)
    assert str(notification.idempotency_key) == body["idempotency_key"]
    assert AuditEvent.objects.filter(action="channel.test", actor=alice, object_id=str(channel.pk)).exists()


@pytest.mark.parametrize("receiver", [500], indirect=True)
def test_a_failed_test_is_a_200_that_says_why_and_is_not_retried(client_for, alice, tenant_a, receiver):
    channel = channel_of(tenant_a, url=receiver.url)
    response = client_for(alice).post(f"{URL}/{channel.pk}/test")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["delivered"], body["status_code"]) == (False, 500)
    assert body["error"]
    assert len(receiver.requests) == 1
    assert Notification.objects.get(channel=channel).status == "failed"
    assert DeliveryAttempt.objects.filter(notification__channel=channel, outcome="failed").count() == 1


def test_a_test_to_nobody_listening_has_no_status_code(client_for, alice, tenant_a, allow_private):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the send: nothing listens there
    channel = channel_of(tenant_a, url=f"http://127.0.0.1:{port}/hook")
    body = client_for(alice).post(f"{URL}/{channel.pk}/test").json()
    assert (body["delivered"], body["status_code"]) == (False, None)
    assert body["error"]


def test_a_test_to_a_private_target_fails_once_it_is_no_longer_allowed(client_for, alice, tenant_a):
    channel = channel_of(tenant_a, url="http://127.0.0.1:9/hook")  # saved while it was allowed
    body = client_for(alice).post(f"{URL}/{channel.pk}/test").json()
    assert (body["delivered"], body["status_code"]) == (False, None)
    assert "alerts.allow_private_targets" in body["error"]
