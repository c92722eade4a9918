"""Schema fuzzing: schemathesis against the real server's own ``/api/schema``, every operation.

Each operation gets up to ``EXAMPLES`` generated requests that fit the schema and up to ``EXAMPLES``
that do not, sent with a superuser's bearer token and a claimed agent's ``X-Agent-API-Key``. Agent
routes get that agent's id as ``agent_id`` (so requests pass authentication and reach the body);
``GET``/``PATCH`` on ``/{kind}/{id}`` get the id of a real object of that kind (so they reach the
serializers, not only the 404). Destructive operations (DELETE, revoke, rotate-key) keep random ids
so the fixture's objects survive the run.

Every response must: not be a 5xx, have a documented status, content type and body, and, when it is
a 4xx, carry the contract's error shape (AGENT_API.md §2). The run is derandomized and bounded (no
shrinking, no example database), so it costs the same and finds the same things on every run."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from endpoints import services
from tenants.models import Membership
from tenants.services import Actor
from tests.reliability.conftest import ERROR_KEYS

pytestmark = pytest.mark.server

EXAMPLES = 15  # per operation and generation mode
REAL_ID_METHODS = ("GET", "PATCH")


def contract_error_shape(ctx, response, case) -> None:
    """Every 4xx is the contract's JSON error: ``{"error", "message", "request_id"}``."""
    if not 400 <= response.status_code < 500:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), f"{response.status_code} answered as {content_type!r}"
    body = json.loads(response.content)
    missing = ERROR_KEYS - set(body) if isinstance(body, dict) else ERROR_KEYS
    assert not missing, f"{response.status_code} error body lacks {sorted(missing)}: {body}"


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    contract_error_shape,
]


@dataclass
class Tally:
    """What the run did, for the failure message and docs/reliability.md."""

    operations: int = 0
    examples: Counter = field(default_factory=Counter)  # operation label -> requests sent
    statuses: Counter = field(default_factory=Counter)  # status code -> responses
    failures: dict = field(default_factory=dict)  # "label [mode]" -> message
    nothing_to_negate: list = field(default_factory=list)

    def summary(self, seconds: float) -> str:
        counts = self.examples.values()
        return (
            f"schema fuzz: {self.operations} operations, {sum(counts)} requests "
            f"({min(counts)}-{max(counts)} per operation, at most {EXAMPLES} per mode), "
            f"{len(self.nothing_to_negate)} operations with nothing to negate, "
            f"statuses {dict(sorted(self.statuses.items()))}, {seconds:.1f}s"
        )


def real_objects(stack) -> dict[str, str]:
    """One real object of every kind with an ``/{kind}/{id}`` route, keyed by the kind."""
    actor = Actor.cli()
    tag = services.tag_create(actor=actor, section=stack.section, name="fuzz-web", scope="global")
    endpoint = services.endpoint_create(actor=actor, section=stack.section, address="192.0.2.80", tag_ids=[tag.pk])
    topology = services.topology_create(
        actor=actor, section=stack.section, name="fuzz-mesh", monitor_tag_ids=[tag.pk], target_tag_ids=[tag.pk]
    )
    membership = Membership.objects.get(user=stack.admin, tenant=stack.tenant)
    ids = {
        "tenants": stack.tenant.pk,
        "sections": stack.section.pk,
        "memberships": membership.pk,
        "tags": tag.pk,
        "endpoints": endpoint.pk,
        "topologies": topology.pk,
        "agents": stack.agent_id,
    }
    return {kind: str(value) for kind, value in ids.items()}


def fixed_path_parameters(operation, stack, ids: dict[str, str]) -> dict[str, str]:
    names = {parameter.name for parameter in operation.path_parameters}
    fixed = {}
    if "agent_id" in names:
        fixed["agent_id"] = str(stack.agent_id)
    kind = operation.path.removeprefix("/api/v1/").split("/")[0]
    if "id" in names and operation.method.upper() in REAL_ID_METHODS and kind in ids:
        fixed["id"] = ids[kind]
    return fixed


def has_something_to_negate(operation, fixed: dict) -> bool:
    """Negative generation needs a body, a query parameter or a free path parameter to break
    (headers are strings whatever they hold, so they cannot be made to violate a string schema)."""
    free_path = any(parameter.name not in fixed for parameter in operation.path_parameters)
    return bool(operation.body) or bool(list(operation.query)) or free_path


def fuzz(operation, mode, tally: Tally, session: requests.Session, headers: dict, fixed: dict) -> None:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed, headers=headers)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=strategy)
    def run(case):
        response = case.call(session=session, timeout=15)
        tally.examples[operation.label] += 1
        tally.statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        tally.nothing_to_negate.append(operation.label)
    except (Exception, BaseExceptionGroup) as failure:  # schemathesis reports a FailureGroup
        tally.failures[f"{operation.label} [{mode.value}]"] = str(failure)[:3000]


def _logs_out(operation) -> bool:
    return operation.path.endswith("/auth/logout")


def test_every_operation_answers_as_documented(stack):
    started = time.monotonic()
    ids = real_objects(stack)
    schema = schemathesis.openapi.from_url(f"{stack.server.url}/api/schema")
    headers = {**stack.user_headers(), **stack.agent_headers()}
    tally = Tally()
    with requests.Session() as session:
        session.trust_env = False  # loopback only: no proxy from the environment
        # Logout revokes the token every other operation uses: it goes last.
        operations = sorted((result.ok() for result in schema.get_all_operations()), key=_logs_out)
        for operation in operations:
            tally.operations += 1
            fixed = fixed_path_parameters(operation, stack, ids)
            fuzz(operation, GenerationMode.POSITIVE, tally, session, headers, fixed)
            if has_something_to_negate(operation, fixed):
                fuzz(operation, GenerationMode.NEGATIVE, tally, session, headers, fixed)
            else:
                tally.nothing_to_negate.append(operation.label)
    print("\n" + tally.summary(time.monotonic() - started))
    assert tally.operations >= 46, tally.operations  # the whole schema was loaded and walked
    assert tally.statuses[400] and tally.statuses[200], tally.statuses  # both modes reached the views
    assert not tally.failures, "\n\n".join(f"{label}:\n{message}" for label, message in tally.failures.items())
    assert stack.server.request("GET", "/healthz").status == 200
