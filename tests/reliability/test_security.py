"""Security against the real server: claim-token brute force, one agent against another's data, key
revocation on every worker, and one tenant against another through every API route and admin URL."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.apps import apps
from django.contrib import admin
from django.urls import URLResolver, get_resolver

from agents.models import Agent, AgentRegistration
from endpoints import services as endpoint_services
from results.models import AgentStatusReport, CheckResult, Heartbeat, UnknownEndpoint
from tenants.models import AuditEvent
from tenants.services import Actor
from tests.factories import MembershipFactory, SectionFactory, TenantFactory, UserFactory
from tests.reliability.conftest import CANONICAL, CLAIM_TOKEN, check_contract_error, login, onboard_agent
from tests.server import ServerProcess

pytestmark = pytest.mark.server

PREFIXES = ("/api/v1", "/v1", "")
SPELLINGS = {
    "canonical": str,
    "upper case": lambda i: i.upper(),
    "no hyphens": lambda i: i.replace("-", ""),
    "braces": lambda i: "{" + i + "}",
    "urn": lambda i: "urn:uuid:" + i,
}


def register(server: ServerProcess, agent_id, token: str, prefix: str = CANONICAL):
    body = {
        "agentId": str(agent_id),
        "claimTokenHash": hashlib.sha256(token.encode()).hexdigest(),
        "hostname": "guessed",
        "agentVersion": "0.4.2",
    }
    return server.request("POST", f"{prefix}/agent/register", body)


def claim(
    server: ServerProcess,
    bearer: str,
    agent_id: str,
    token: str,
    section,
    prefix: str = CANONICAL,
    route="/agents/claim",
):
    body = {"agentId": agent_id, "claimToken": token, "sectionId": str(section.pk)}
    return server.request("POST", prefix + route, body, headers={"Authorization": f"Bearer {bearer}"})


# ---------------------------------------------------------------------------------------------
# Claim tokens cannot be guessed


def test_five_wrong_claim_tokens_lock_the_claim_until_the_agent_registers_again(stack):
    server, agent_id = stack.server, uuid.uuid4()
    assert register(server, agent_id, CLAIM_TOKEN).status == 201
    # Five guesses through every mount, both route spellings and several spellings of the id: one counter.
    guesses = [
        ("/api/v1", "/agents/claim", str(agent_id)),
        ("/v1", "/agent/claim", str(agent_id).upper()),
        ("", "/agents/claim", agent_id.hex),
        ("/api/v1", "/agent/claim", agent_id.urn),
        ("/v1", "/agents/claim", str(agent_id)),
    ]
    for attempt, (prefix, route, spelled) in enumerate(guesses, start=1):
        response = claim(server, stack.admin_token, spelled, f"guess-{attempt:02d}" * 8, stack.section, prefix, route)
        assert check_contract_error(response, 409)["error"] == "invalid_claim_token", attempt

    locked = claim(server, stack.admin_token, str(agent_id), CLAIM_TOKEN, stack.section)  # the right token
    assert check_contract_error(locked, 409)["error"] == "claim_locked"
    sixth = claim(server, stack.admin_token, str(agent_id), "guess-06" * 8, stack.section)
    assert check_contract_error(sixth, 409)["error"] == "claim_locked"
    assert not Agent.objects.filter(pk=agent_id).exists()
    assert AgentRegistration.objects.get(pk=agent_id).failed_claim_attempts == 5
    poll = server.request("GET", f"{CANONICAL}/agent/{agent_id}/claim-status").json()
    assert poll["status"] == "pending_claim" and "apiKey" not in poll

    # The agent registers again (a restart: a new token): the lock is gone and the new token claims it.
    new_token = "Nw4tOkEn" * 8
    assert register(server, agent_id, new_token, prefix="/v1").status == 200
    old_token = claim(server, stack.admin_token, str(agent_id), CLAIM_TOKEN, stack.section)
    assert check_contract_error(old_token, 409)["error"] == "invalid_claim_token"  # no longer the right one
    claimed = claim(server, stack.admin_token, str(agent_id), new_token, stack.section)
    assert claimed.status == 200, claimed.body
    assert server.request("GET", f"{CANONICAL}/agent/{agent_id}/claim-status").json()["status"] == "claimed"


def test_concurrent_guesses_get_no_more_than_five_tries(stack):
    """Twenty wrong tokens at once, spread over the workers' threads: still only five are tried."""
    server, agent_id = stack.server, uuid.uuid4()
    assert register(server, agent_id, CLAIM_TOKEN).status == 201

    def guess(number: int) -> str:
        response = claim(server, stack.admin_token, str(agent_id), f"guess-{number:02d}" * 8, stack.section)
        return check_contract_error(response, 409)["error"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(guess, range(20)))
    assert codes.count("invalid_claim_token") == 5, codes
    assert codes.count("claim_locked") == 15, codes
    right = claim(server, stack.admin_token, str(agent_id), CLAIM_TOKEN, stack.section)
    assert check_contract_error(right, 409)["error"] == "claim_locked"
    assert not Agent.objects.filter(pk=agent_id).exists()


# ---------------------------------------------------------------------------------------------
# One agent cannot reach another agent's data


def agent_rows(agent_id, *, own_row: bool = True) -> dict:
    """Everything stored for one agent (and its own row, last-seen included), to compare before and after."""
    models = (Heartbeat, AgentStatusReport, CheckResult, UnknownEndpoint)
    rows = {model.__name__: sorted(map(repr, model.objects.filter(agent_id=agent_id).values())) for model in models}
    if own_row:
        rows["Agent"] = repr(list(Agent.objects.filter(pk=agent_id).values()))
    return rows


def data_plane_calls(victim_id: str) -> dict[str, tuple[str, dict | None]]:
    """route -> (method, body) for every agent route, with bodies that would be stored if accepted."""
    item = {
        "id": str(uuid.uuid4()),
        "agent_id": victim_id,
        "endpoint_id": str(uuid.uuid4()),
        "timestamp": "2026-01-01T00:00:00Z",
        "check_type": {"type": "tcpconnect", "result": {"resolved_ip": "192.0.2.1", "connected": True}},
    }
    return {
        "configuration": ("GET", None),
        "heartbeat": ("POST", {"status": "healthy", "cpu_usage_percent": 1.0}),
        "report": ("POST", {"agent_version": "9.9.9", "is_running": True}),
        "results": ("POST", {"results": [item]}),
    }


def test_an_agent_cannot_read_or_write_another_agents_data_by_any_path_spelling(stack):
    victim = str(stack.agent_id)
    intruder_id, intruder_key = onboard_agent(stack.server, stack.section, stack.superuser_token, hostname="intruder")
    before = {victim: agent_rows(victim), intruder_id: agent_rows(intruder_id, own_row=False)}
    tried = 0
    for prefix in PREFIXES:
        for spelling, spell in SPELLINGS.items():
            for route, (method, body) in data_plane_calls(victim).items():
                path = f"{prefix}/agent/{spell(victim)}/{route}"
                response = stack.server.request(method, path, body, headers={"X-Agent-API-Key": intruder_key})
                assert check_contract_error(response, 403)["error"] == "forbidden", (spelling, path)
                tried += 1
    # On its own path, with the victim's id inside the results: refused item by item, nothing stored.
    own = stack.server.request(
        "POST",
        stack.agent_path("results", agent_id=intruder_id),
        data_plane_calls(victim)["results"][1],
        headers={"X-Agent-API-Key": intruder_key},
    )
    assert own.status == 202 and own.json()["rejected"][0]["error"] == "agent_id_mismatch", own.body
    # An agent key is no credential for the people's API.
    for prefix in PREFIXES:
        people = stack.server.request("GET", f"{prefix}/agents/{victim}", headers={"X-Agent-API-Key": intruder_key})
        assert check_contract_error(people, 401)["error"] == "unauthorized"
    assert {victim: agent_rows(victim), intruder_id: agent_rows(intruder_id, own_row=False)} == before
    assert tried == len(PREFIXES) * len(SPELLINGS) * 4
    # The victim's own key still works on every spelling (the refusals were about the key, not the path).
    for spelling, spell in SPELLINGS.items():
        path = f"/v1/agent/{spell(victim)}/configuration"
        assert stack.server.request("GET", path, headers=stack.agent_headers()).status == 200, spelling


# ---------------------------------------------------------------------------------------------
# A revoked key stops working at once on every worker


def worker_pids(server: ServerProcess) -> list[int]:
    """The gunicorn workers: grandchildren of `manage.py serve` (serve -> gunicorn master -> workers)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    masters = [pid for pid, parent in parents.items() if parent == server.process.pid]
    return sorted(pid for pid, parent in parents.items() if parent in masters)


def bytes_written(pid: int) -> int:
    """What the process has written so far (sockets and log lines alike): it grows when it serves."""
    io = Path(f"/proc/{pid}/io").read_text()
    return int(re.search(r"^wchar: (\d+)$", io, re.MULTILINE).group(1))


def fresh_get(server: ServerProcess, path: str, key: str) -> int:
    """One GET on a new connection (a new accept(), so any worker may take it); the status."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Agent-API-Key: {key}\r\nConnection: close\r\n\r\n".encode()
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return int(reply.split(b" ", 2)[1])


@dataclass
class Fleet:
    server: ServerProcess
    section: object
    token: str
    agent_id: uuid.UUID
    key: str
    workers: list[int]


@pytest.fixture
def two_workers(server_factory) -> Fleet:
    """A server with two single-threaded workers, an admin's token and a claimed agent."""
    server = server_factory(env={"SMOTRA_WORKERS": "2", "SMOTRA_THREADS": "1"})
    tenant = TenantFactory(name="Workers")
    section = SectionFactory(tenant=tenant, name="edge")
    MembershipFactory(user=UserFactory(username="keyadmin"), tenant=tenant, role="admin")
    token = login(server, "keyadmin")
    agent_id, key = onboard_agent(server, section, token)
    workers = worker_pids(server)
    assert len(workers) == 2, workers
    return Fleet(server, section, token, agent_id, key, workers)


def per_worker(fleet: Fleet, key: str, *, at_least: int, limit: int = 400) -> tuple[Counter, dict[int, int]]:
    """Sequential GETs on fresh connections, each put down to the worker whose written bytes grew,
    until every worker has answered ``at_least`` of them: the statuses seen and the count per worker."""
    path = f"/v1/agent/{fleet.agent_id}/configuration"
    statuses, served = Counter(), dict.fromkeys(fleet.workers, 0)
    for _ in range(limit):
        before = {pid: bytes_written(pid) for pid in fleet.workers}
        statuses[fresh_get(fleet.server, path, key)] += 1
        for pid in fleet.workers:
            served[pid] += bytes_written(pid) > before[pid]
        if min(served.values()) >= at_least and sum(statuses.values()) >= 20:
            return statuses, served
    raise AssertionError(f"{limit} requests did not reach every worker {at_least} times: {served}")


def test_a_revoked_key_is_refused_within_a_second_on_every_worker(two_workers):
    fleet = two_workers
    warm, _ = per_worker(fleet, fleet.key, at_least=10)  # both workers have served this key
    assert set(warm) == {200}, warm

    revoked = fleet.server.request(
        "POST", f"{CANONICAL}/agents/{fleet.agent_id}/revoke", headers={"Authorization": f"Bearer {fleet.token}"}
    )
    revoked_at = time.monotonic()
    assert revoked.status == 200, revoked.body
    statuses, served = per_worker(fleet, fleet.key, at_least=3)
    elapsed = time.monotonic() - revoked_at

    print(f"\nrevoked key: {dict(statuses)} from workers {served} within {elapsed:.2f}s of the revocation")
    assert set(statuses) == {401}, statuses
    assert elapsed < 1.0


def test_a_rotated_key_replaces_the_old_one_at_once_on_every_worker(two_workers):
    fleet = two_workers
    per_worker(fleet, fleet.key, at_least=10)

    rotated = fleet.server.request(
        "POST", f"{CANONICAL}/agents/{fleet.agent_id}/rotate-key", headers={"Authorization": f"Bearer {fleet.token}"}
    )
    rotated_at = time.monotonic()
    assert rotated.status == 200, rotated.body
    old, _ = per_worker(fleet, fleet.key, at_least=3)
    new, _ = per_worker(fleet, rotated.json()["apiKey"], at_least=3)

    assert time.monotonic() - rotated_at < 2.0
    assert (set(old), set(new)) == ({401}, {200}), (old, new)


# ---------------------------------------------------------------------------------------------
# One tenant cannot reach another's objects: every API route, every admin URL

MARKER = "zqalpha"  # in every name of tenant A's objects: a response that shows one leaks A
NOISE = {"RateLimitCounter", "AuditEvent", "Session"}  # written by refusals themselves (audited separately)
POLL_COUNTERS = {"poll_count", "last_polled_at"}


@dataclass
class Tenancy:
    """Tenant A with objects of every kind (made through the API where an agent is involved) and
    bob, a staff admin of tenant B, with a bearer token and the key of B's agent."""

    ids: dict[str, str]  # kind -> id of A's object of that kind
    section_a: object
    bob: object
    bob_token: str
    bob_agent_key: str


def build_tenancy(server: ServerProcess) -> Tenancy:
    actor = Actor.cli()
    tenant = TenantFactory(name=f"{MARKER}-tenant")
    section = SectionFactory(tenant=tenant, name=f"{MARKER}-section")
    alice = UserFactory(username=f"{MARKER}-alice")
    membership = MembershipFactory(user=alice, tenant=tenant, role="admin")
    tag = endpoint_services.tag_create(actor=actor, section=section, name=f"{MARKER}-tag")
    endpoint = endpoint_services.endpoint_create(
        actor=actor, section=section, address=f"{MARKER}.example.net", tag_ids=[tag.pk]
    )
    topology = endpoint_services.topology_create(
        actor=actor, section=section, name=f"{MARKER}-mesh", monitor_tag_ids=[tag.pk], target_tag_ids=[tag.pk]
    )
    agent_id, key = onboard_agent(server, section, login(server, alice.username), hostname=f"{MARKER}-agent")
    Agent.objects.filter(pk=agent_id).first().tags.set([tag])
    feed_agent(server, agent_id, key, endpoint.pk)

    tenant_b = TenantFactory(name="bravo-tenant")
    section_b = SectionFactory(tenant=tenant_b, name="bravo-section")
    bob = UserFactory(username="bob-of-b", is_staff=True)
    MembershipFactory(user=bob, tenant=tenant_b, role="admin")
    _, bob_agent_key = onboard_agent(server, section_b, login(server, bob.username), hostname="bravo-agent")
    ids = {
        "tenant": tenant.pk,
        "section": section.pk,
        "membership": membership.pk,
        "tag": tag.pk,
        "endpoint": endpoint.pk,
        "topology": topology.pk,
        "agent": agent_id,
        "self-endpoint": Agent.objects.get(pk=agent_id).self_endpoint_id,
        "user": alice.pk,
    }
    return Tenancy(
        {kind: str(value) for kind, value in ids.items()}, section, bob, login(server, bob.username), bob_agent_key
    )


def feed_agent(server: ServerProcess, agent_id, key: str, endpoint_id) -> None:
    """A's agent sends a heartbeat, a report and results (one for an unknown endpoint)."""
    headers = {"X-Agent-API-Key": key}
    path = f"/v1/agent/{agent_id}"
    items = [
        {
            "id": str(uuid.uuid4()),
            "agent_id": str(agent_id),
            "endpoint_id": str(target),
            "timestamp": "2026-01-01T00:00:00Z",
            "check_type": {"type": "tcpconnect", "result": {"resolved_ip": "192.0.2.1", "connected": True}},
        }
        for target in (endpoint_id, uuid.uuid4())
    ]
    assert server.request("POST", f"{path}/heartbeat", {"status": "healthy"}, headers).status == 204
    assert server.request("POST", f"{path}/report", {"agent_version": f"{MARKER}-1"}, headers).status == 202
    stored = server.request("POST", f"{path}/results", {"results": items}, headers)
    assert stored.status == 202 and stored.json()["accepted"] == 1, stored.body


def attack_body(tenancy: Tenancy) -> dict:
    """One body for every write: every id field of every route pointing at tenant A's objects."""
    ids = tenancy.ids
    return {
        "name": "bravo-took-it",
        "description": "bravo",
        "tenant_id": ids["tenant"],
        "section_id": ids["section"],
        "sectionId": ids["section"],
        "agentId": ids["agent"],
        "claimToken": CLAIM_TOKEN,
        "claimTokenHash": hashlib.sha256(CLAIM_TOKEN.encode()).hexdigest(),
        "hostname": "bravo-host",
        "agentVersion": "1.0.0",
        "username": "bob-of-b",
        "password": "pw",
        "role": "admin",
        "address": "192.0.2.66",
        "port": 80,
        "enabled": False,
        "scope": "global",
        "type": "full_mesh",
        "tag_ids": [ids["tag"]],
        "tags": [ids["tag"]],
        "monitor_tag_ids": [ids["tag"]],
        "target_tag_ids": [ids["tag"]],
        "status": "healthy",
        "results": [
            {
                "id": str(uuid.uuid4()),
                "agent_id": ids["agent"],
                "endpoint_id": ids["endpoint"],
                "timestamp": "2026-01-01T00:00:00Z",
                "check_type": {"type": "tcpconnect", "result": {"resolved_ip": "192.0.2.1", "connected": True}},
            }
        ],
    }


def every_row() -> dict:
    """Every table but those the refusals themselves write to, as sorted reprs. The claim-status
    poll counters are left out too: that route takes no credentials by contract (§4), and counting
    a poll changes nothing anyone can read beyond the backoff it answers."""
    tables = {}
    for model in apps.get_models():
        if model.__name__ not in NOISE:
            fields = [field.attname for field in model._meta.concrete_fields if field.attname not in POLL_COUNTERS]
            tables[model.__name__] = sorted(map(repr, model._base_manager.values(*fields)))
    return tables


def api_routes() -> list[str]:
    """Every URL pattern outside the admin, as a route with ``{name}`` for each path parameter."""

    def walk(resolver, prefix=""):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern)

    routes = []
    for route in walk(get_resolver()):
        route = route.replace("^", "").replace("$", "")
        route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)  # path("a/<anyuuid:agent_id>")
        route = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)  # router regexes
        # Logout ends the caller's own token and touches nothing else: it would only cut the attack short.
        if not route.startswith("admin/") and not route.endswith("auth/logout"):
            routes.append("/" + route)
    return routes


def concrete_urls(route: str, ids: dict[str, str]) -> list[str]:
    """The route with every one of A's ids in its path parameter (routes have at most one)."""
    names = re.findall(r"{(\w+)}", route)
    assert len(names) <= 1, route
    if not names:
        return [route]
    return [route.replace("{" + names[0] + "}", value) for value in ids.values()]


def test_a_tenant_admin_cannot_reach_another_tenants_objects_through_any_api_route(server_factory):
    server = server_factory()
    tenancy = build_tenancy(server)
    routes = api_routes()
    before, audit_before = every_row(), set(AuditEvent.objects.values_list("pk", flat=True))
    headers = {"Authorization": f"Bearer {tenancy.bob_token}", "X-Agent-API-Key": tenancy.bob_agent_key}
    body = json.dumps(attack_body(tenancy))
    leaks, accepted, statuses = [], [], Counter()
    started = time.monotonic()
    with requests.Session() as session:
        session.trust_env = False  # loopback only: no proxy from the environment
        for route in routes:
            for url in concrete_urls(route, tenancy.ids):
                for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
                    data = body if method in ("POST", "PUT", "PATCH") else None
                    response = session.request(
                        method, server.url + url, data=data, headers={**headers, "Content-Type": "application/json"}
                    )
                    statuses[response.status_code] += 1
                    if MARKER in response.text:
                        leaks.append(f"{method} {url} -> {response.status_code}: {response.text[:300]}")
                    if response.ok and any(value in response.text for value in tenancy.ids.values()):
                        accepted.append(f"{method} {url} -> {response.status_code}: {response.text[:300]}")
                    if response.status_code >= 500:
                        accepted.append(f"{method} {url} -> {response.status_code}")
        # The same token does see its own tenant: the refusals were about tenant A alone.
        own = session.get(f"{server.url}/api/v1/tenants", headers=headers).json()["tenants"]
    tried = sum(statuses.values())
    print(
        f"\ncross-tenant API: {len(routes)} URL patterns, {tried} requests, "
        f"statuses {dict(sorted(statuses.items()))}, {time.monotonic() - started:.1f}s"
    )
    assert [tenant["name"] for tenant in own] == ["bravo-tenant"]
    assert not leaks, "\n".join(leaks)
    assert not accepted, "\n".join(accepted)
    assert every_row() == before
    # Refusals are audited (in A's log for claims into A's section), and nothing else is.
    new_audit = list(AuditEvent.objects.exclude(pk__in=audit_before).values_list("action", flat=True))
    assert all(action.endswith("_failed") for action in new_audit), new_audit
    assert len(routes) >= 80 and tried > 1000


def admin_objects(tenancy: Tenancy) -> dict:
    """Model -> tenant A's object of that model (its pk), for the admin's object URLs."""
    ids = tenancy.ids
    return {
        "tenant": ids["tenant"],
        "section": ids["section"],
        "membership": ids["membership"],
        "tag": ids["tag"],
        "endpoint": ids["endpoint"],
        "topology": ids["topology"],
        "agent": ids["agent"],
        "agentregistration": ids["agent"],
        "user": ids["user"],
        "auditevent": str(AuditEvent.objects.filter(tenant_id=ids["tenant"]).first().pk),
        "unknownendpoint": str(UnknownEndpoint.objects.get(agent_id=ids["agent"]).pk),
        "checkresult": str(CheckResult.objects.get(agent_id=ids["agent"]).pk),
    }


def admin_urls(objects: dict, all_ids: list[str]) -> list[str]:
    """Every URL of every registered model admin, with A's object of that model as the object id
    (every A id for models A has none of), plus the admin's index and app indexes."""
    urls = {"/admin/"}
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        base = f"/admin/{meta.app_label}/{meta.model_name}/"
        urls |= {f"/admin/{meta.app_label}/", base + "?q=zqalp"}  # a search for A's names; the page echoes the term
        values = [objects[meta.model_name]] if meta.model_name in objects else all_ids
        for pattern in model_admin.get_urls():
            route = re.sub(r"<(?:\w+:)?\w+>", "{}", str(pattern.pattern))
            urls |= {base + route.replace("{}", value) for value in values} if "{}" in route else {base + route}
    return sorted(urls)


def test_a_tenant_staff_member_cannot_reach_another_tenants_objects_through_any_admin_url(server_factory, client):
    server = server_factory()
    tenancy = build_tenancy(server)
    objects = admin_objects(tenancy)
    urls = admin_urls(objects, sorted(set(tenancy.ids.values())))
    form = {
        "name": "bravo-took-it",
        "tenant": tenancy.ids["tenant"],
        "section": tenancy.ids["section"],
        "address": "192.0.2.66",
        "scope": "global",
        "type": "full_mesh",
        "enabled": "on",
        "role": "admin",
        "user": str(tenancy.bob.pk),
        "tags": tenancy.ids["tag"],
        "claim_token": CLAIM_TOKEN,
        "token": CLAIM_TOKEN,
        "post": "yes",
        "_save": "Save",
    }
    client.force_login(tenancy.bob)
    before = every_row()
    leaks, statuses = [], Counter()
    for url in urls:
        for method in ("get", "post"):
            response = getattr(client, method)(url, form if method == "post" else None)
            statuses[response.status_code] += 1
            page = response.content.decode(errors="replace")
            if MARKER in page:
                leaks.append(f"{method.upper()} {url} -> {response.status_code}")
            if response.status_code >= 500:
                leaks.append(f"{method.upper()} {url} -> {response.status_code}")
    print(
        f"\ncross-tenant admin: {len(urls)} URLs, {sum(statuses.values())} requests, "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    assert not leaks, "\n".join(leaks)
    assert "bravo-tenant" in client.get("/admin/tenants/tenant/").content.decode()  # bob does see his own
    assert every_row() == before
    assert len(urls) > 60
