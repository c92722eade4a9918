"""Result batches from agents (contract §6.4): per-item validation, atomic storage, unknown endpoints."""

from __future__ import annotations

from collections import Counter as Tally
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from msgspec import ValidationError, convert
from uuid6 import uuid7

from agents.models import Agent
from agents.services.presence import agent_seen
from endpoints.models import Endpoint
from results.checks import CHECKS, COLUMN_KEYS, check_columns
from results.models import UnknownEndpoint
from results.storage import ResultRow, results_store
from results.typed_items import Item
from smotra import metrics
from smotra import validation as v
from smotra.errors import DomainError, Invalid


@dataclass
class Rejection:
    index: int
    id: str | None
    error: str
    message: str


@dataclass
class IngestOutcome:
    submission_id: UUID
    received_at: datetime
    accepted: int = 0
    duplicates_skipped: int = 0
    rejected: list[Rejection] = field(default_factory=list)


@dataclass(slots=True)
class _Candidate:
    index: int
    result: ResultRow
    address_hint: str


class BatchTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


def batch_items(body) -> list:
    """The ``results`` list of a batch, or the refusal of the whole request (contract §6.4)."""
    if not isinstance(body, dict):
        raise Invalid("The body must be a JSON object with a results list.", field="body")
    items = body.get("results")
    if items is None or (isinstance(items, list) and not items):
        raise DomainError("The batch has no results.", code="empty_batch", status=400, field="results")
    if not isinstance(items, list):
        raise Invalid("results must be a list.", field="results")
    limit = settings.SMOTRA.results.max_batch_items
    if len(items) > limit:
        raise BatchTooLarge(f"The batch has {len(items)} results; at most {limit} are accepted per request.")
    return items


def _candidate(agent: Agent, index: int, item) -> _Candidate:
    """The item as a row to store, or the DomainError that refuses it: checked by msgspec against
    ``results.typed_items``; an item refused there (rare: a bad item, or one those types are
    stricter about) goes through ``_checked_candidate``, which has the last word."""
    try:
        return _typed_candidate(agent, index, item)
    except (ValidationError, DomainError):
        return _checked_candidate(agent, index, item)


def _typed_candidate(agent: Agent, index: int, item) -> _Candidate:
    v.refuse_hostile(item, f"results[{index}]")  # NUL and depth first, on the parsed item, as below
    typed = convert(item, Item)
    if typed.agent_id != agent.pk:
        raise DomainError("agent_id is not the authenticated agent.", code="agent_id_mismatch")
    check = typed.check_type
    check_type = check.__struct_config__.tag
    columns = check.result.columns()
    result = ResultRow(
        id=typed.id,
        endpoint_id=typed.endpoint_id,
        check_type=check_type,
        checked_at=v.timestamp(item, "timestamp", "timestamp", required=True),
        details={
            key: value for key, value in item["check_type"]["result"].items() if key not in COLUMN_KEYS[check_type]
        },
        **columns,
    )
    return _Candidate(index, result, result.resolved_ip)


def _checked_candidate(agent: Agent, index: int, item) -> _Candidate:
    """Every check in plain Python, each refusal with its code and the path of the field at fault."""
    path = f"results[{index}]"
    if not isinstance(item, dict):
        raise Invalid(f"{path} must be an object.", field=path)
    # One walk over the whole item, first: NUL anywhere, and depth counted from the item, so a
    # 990-level item is refused alone before anything else looks at it.
    v.refuse_hostile(item, path, known=("check_type.result",), prefix=f"{path}.")
    result_id = v.uuid_value(item, "id", f"{path}.id")
    if v.uuid_value(item, "agent_id", f"{path}.agent_id") != agent.pk:
        raise DomainError("agent_id is not the authenticated agent.", code="agent_id_mismatch")
    endpoint_id = v.uuid_value(item, "endpoint_id", f"{path}.endpoint_id")
    checked_at = v.timestamp(item, "timestamp", f"{path}.timestamp", required=True)
    check = v.mapping(item, "check_type", f"{path}.check_type", required=True)
    check_type = check.get("type")
    if not isinstance(check_type, str) or check_type not in CHECKS:  # a list or object is unhashable
        raise DomainError(f"Unknown check type {str(check_type)[:40]!r}.", code="invalid_check_type")
    columns, details = check_columns(check_type, check.get("result"), f"{path}.check_type.result")
    result = ResultRow(
        id=result_id,
        endpoint_id=endpoint_id,
        check_type=check_type,
        checked_at=checked_at,
        details=details,
        **columns,
    )
    return _Candidate(index, result, result.resolved_ip)


def _reject(outcome: IngestOutcome, index: int, item, exc: DomainError) -> None:
    raw_id = item.get("id") if isinstance(item, dict) else None
    outcome.rejected.append(Rejection(index, raw_id if isinstance(raw_id, str) else None, exc.code, exc.message[:500]))


def results_ingest(*, agent: Agent, items: list) -> IngestOutcome:
    """Validate every item, then store the good ones atomically with set-based statements: one
    lookup of endpoints, one of already stored ids, one bulk insert. Bad items are listed, never
    fatal (the agent resends a failed batch forever: no poison batches)."""
    now = timezone.now()
    outcome = IngestOutcome(submission_id=uuid7(), received_at=now)
    candidates = []
    for index, item in enumerate(items):
        try:
            candidates.append(_candidate(agent, index, item))
        except DomainError as exc:
            _reject(outcome, index, item, exc)
    candidates = _known_endpoints_only(agent, candidates, outcome, items, now)
    outcome.rejected.sort(key=lambda rejection: rejection.index)
    stored = _store(agent, candidates, outcome)
    agent_seen(agent, result=bool(outcome.accepted or outcome.duplicates_skipped), now=now)
    _count(stored, outcome, items)
    return outcome


def _known_endpoints_only(agent, candidates, outcome, items, now) -> list[_Candidate]:
    """Keep results for endpoints of the agent's section; remember ids nobody knows (adoption)."""
    sections = _sections_of({candidate.result.endpoint_id for candidate in candidates})
    unknown: dict[UUID, list[_Candidate]] = {}
    kept = []
    for candidate in candidates:
        section_id = sections.get(candidate.result.endpoint_id)
        if section_id == agent.section_id:
            kept.append(candidate)
            continue
        if section_id is None:
            unknown.setdefault(candidate.result.endpoint_id, []).append(candidate)
        error = DomainError("The endpoint is not configured for this agent.", code="unknown_endpoint")
        _reject(outcome, candidate.index, items[candidate.index], error)
    _remember_unknown(agent, unknown, now)
    return kept


def _sections_of(endpoint_ids: set[UUID]) -> dict[UUID, UUID]:
    """Endpoint id -> its section's id, for the ids that exist. On PostgreSQL the ids are one array
    parameter: compiling the ORM's IN list of up to a batch's worth of placeholders cost more than
    the query (bench/ingest_paths.py: 1.6-2.3 ms of a batch's ~10 ms)."""
    if connection.vendor != "postgresql":
        return dict(Endpoint.objects.filter(pk__in=endpoint_ids).values_list("pk", "section_id"))
    with connection.cursor() as cursor:
        cursor.execute(_SECTIONS_SQL, [list(endpoint_ids)])
        return dict(cursor.fetchall())


_SECTIONS_SQL = f"SELECT id, section_id FROM {Endpoint._meta.db_table} WHERE id = ANY(%s)"  # noqa: S608


@transaction.atomic
def _remember_unknown(agent: Agent, unknown: dict[UUID, list[_Candidate]], now: datetime) -> None:
    """Count results per unknown endpoint id of this agent (count, first/last seen, a sample address).

    At most ``agent.max_unknown_endpoints`` ids are remembered per agent: ids it already has keep
    counting, new ones beyond the cap are only counted in a metric, so random ids cannot grow the
    table without bound. The agent's row lock (as in :func:`_store`) keeps concurrent batches from
    passing the cap together. Only result ids not counted before count: a resent batch adds nothing."""
    if not unknown:
        return
    _lock_agent(agent)
    rows = UnknownEndpoint.objects.filter(agent=agent)
    known = {row.endpoint_id: row for row in rows.filter(endpoint_id__in=list(unknown))}
    rows.filter(endpoint_id__in=list(known)).update(last_seen_at=now)
    for endpoint_id, row in known.items():
        fresh = _fresh_ids(unknown[endpoint_id], row.last_result_id)
        if fresh:
            rows.filter(pk=row.pk).update(count=F("count") + len(fresh), last_result_id=max(fresh))
    new = [endpoint_id for endpoint_id in unknown if endpoint_id not in known]
    room = max(0, settings.SMOTRA.agent.max_unknown_endpoints - rows.count()) if new else 0
    rows_to_add = [_unknown_row(agent, key, unknown[key], now) for key in new[:room]]
    UnknownEndpoint.objects.bulk_create(rows_to_add, ignore_conflicts=True)
    if len(new) > room:
        metrics.UNKNOWN_ENDPOINTS_DROPPED.inc(len(new) - room)


def _fresh_ids(seen: list[_Candidate], counted_up_to: UUID | None) -> set[UUID]:
    """Result ids not counted before: above the newest one counted (repeats in a batch count once)."""
    ids = {candidate.result.id for candidate in seen}
    return ids if counted_up_to is None else {result_id for result_id in ids if result_id > counted_up_to}


def _unknown_row(agent: Agent, endpoint_id: UUID, seen: list[_Candidate], now: datetime):
    sample = next((candidate.address_hint for candidate in seen if candidate.address_hint), "")
    ids = _fresh_ids(seen, None)
    return UnknownEndpoint(
        agent=agent,
        endpoint_id=endpoint_id,
        first_seen_at=now,
        last_seen_at=now,
        count=len(ids),
        sample_address=sample,
        last_result_id=max(ids),
    )


def _lock_agent(agent: Agent) -> None:
    """Lock the agent's row until the transaction ends: one agent's batches are stored one at a time.
    On PostgreSQL as SQL written once (the ORM compiled the query anew for every batch: ~1 ms);
    SQLite's IMMEDIATE transaction already holds the database's one write lock."""
    if connection.vendor != "postgresql":
        list(Agent.objects.filter(pk=agent.pk).select_for_update(no_key=True).values_list("pk", flat=True))
        return
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL, [agent.pk])


_LOCK_SQL = f"SELECT 1 FROM {Agent._meta.db_table} WHERE id = %s FOR NO KEY UPDATE"  # noqa: S608


@transaction.atomic
def _store(agent: Agent, candidates: list[_Candidate], outcome: IngestOutcome) -> list[ResultRow]:
    """All accepted items or none. Ids already stored (a resend) and repeats within the batch are
    duplicates. A resend racing this one (the agent timed out and sent again) waits on the agent's
    row, so it finds these ids stored and does not count them as accepted too; the insert's
    ON CONFLICT DO NOTHING keeps ids shared between agents out as well."""
    _lock_agent(agent)
    unique: dict[UUID, ResultRow] = {}
    for candidate in candidates:
        unique.setdefault(candidate.result.id, candidate.result)
    stored = results_store(list(unique.values()), agent_id=agent.pk, received_at=outcome.received_at)
    outcome.accepted = len(stored)
    outcome.duplicates_skipped = len(candidates) - len(stored)
    return [unique[result_id] for result_id in stored]


def _count(stored: list[ResultRow], outcome: IngestOutcome, items) -> None:
    tally = Tally(result.check_type for result in stored)
    for check_type, number in tally.items():
        metrics.RESULTS.labels(check_type, "stored", "").inc(number)
    if outcome.duplicates_skipped:
        metrics.RESULTS.labels("any", "duplicate", "").inc(outcome.duplicates_skipped)
    for rejection in outcome.rejected:
        item = items[rejection.index]
        check = item.get("check_type") if isinstance(item, dict) else None
        check_type = check.get("type") if isinstance(check, dict) else None
        known = isinstance(check_type, str) and check_type in CHECKS
        metrics.RESULTS.labels(check_type if known else "invalid", "rejected", rejection.error).inc()
