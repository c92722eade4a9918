"""The evaluator: one pass judges every enabled rule over the minute rollups and opens, updates and
resolves incidents, writing their notifications to the outbox in the same transaction.

One pass reads the data of all rules with a fixed number of queries, whatever the number of
(endpoint, agent) pairs: the series, endpoints and agents once, and the minute rollups once per
distinct window (grouped by series in the database; histograms only where a percentile is asked).
Each tenant is then judged in its own transaction holding its rules' row locks (SKIP LOCKED on
PostgreSQL), so several evaluators can run at once and each incident and notification happens once.

Judgement, per rule:
- per (endpoint, agent) over the last ``window_seconds``: the condition on the rule's metric, over
  the check types its filter allows; offline agents are left out (their endpoints are judged by
  the others) and so are agents whose network the rule finds broken (below);
- an **agent network** fault: one agent breaching on at least 80 % (and at least 3) of the endpoints
  it reports on while, for at least 80 % of those, most other agents see them fine: one incident
  for that agent instead of one per endpoint;
- an **endpoint** incident opens when at least max(min_agents, ceil(min_percent % of the reporting
  agents)) breach;
- ``agent_offline`` rules: an agent not heard from for agent.offline_after (never-seen agents are
  not offline);
- ``duration_seconds``: a subject's condition must hold that long before its incident opens, and be
  false that long before it resolves (AlertState remembers since when)."""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Aggregate, BinaryField, F, Max, Min, Sum
from django.utils import timezone

from agents.models import Agent, AgentStatus
from alerting.models import OPEN, AlertRule, AlertState, Incident, IncidentEvent, IncidentKind, IncidentStatus, Metric
from alerting.services.maintenance import in_maintenance, windows_now
from alerting.services.notifications import notifications_enqueue
from endpoints.models import Endpoint
from results.histogram import histogram_decode, percentile
from results.models import MinuteRollup, RollupSeries
from results.rollups import Cell
from results.selectors.reports import METRIC_ALIASES

log = logging.getLogger("smotra.alerts")

NETWORK_SHARE = 0.8  # of an agent's endpoints breaching at once: its network, not the targets
NETWORK_MIN_ENDPOINTS = 3
TITLE_LENGTH = Incident._meta.get_field("title").max_length  # an endpoint's address may be longer


@dataclass
class PassStats:
    rules: int = 0
    opened: int = 0
    resolved: int = 0
    reminders: int = 0
    failed_tenants: int = 0
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------
# What one pass reads


@dataclass
class Scope:
    """The (endpoint, agent) cells a set of filters selects, with who reports on what. Rules with
    the same window and filters share one (ids are strings: hashing UUIDs costs more here)."""

    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    reporters: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # endpoint -> agents
    per_agent: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # agent -> endpoints


@dataclass
class Snapshot:
    """Everything a pass judges, read once: series, endpoints, agents and per-window aggregates."""

    now: datetime
    endpoints: dict = field(default_factory=dict)  # str id -> Endpoint (with tenant_id, tag_ids)
    agents: dict = field(default_factory=dict)  # str id -> Agent
    online: set[str] = field(default_factory=set)  # agents online now
    # window_seconds -> tenant id -> [(endpoint id, agent id, check type, Cell)] of online agents
    windows: dict[int, dict] = field(default_factory=dict)
    scopes: dict[tuple, Scope] = field(default_factory=dict)
    verdicts: dict[tuple, tuple] = field(default_factory=dict)
    found: dict[tuple, list] = field(default_factory=dict)


def snapshot(rules: list[AlertRule], now: datetime) -> Snapshot:
    shot = Snapshot(now=now)
    tenants = {rule.tenant_id for rule in rules}
    endpoints = Endpoint.objects.filter(section__tenant__in=tenants, enabled=True).annotate(
        tenant_id=F("section__tenant_id")
    )
    shot.endpoints = {str(endpoint.pk): endpoint for endpoint in endpoints}
    for endpoint in shot.endpoints.values():
        endpoint.tag_ids = set()
    tags = Endpoint.tags.through.objects.filter(endpoint__section__tenant__in=tenants)
    for endpoint_id, tag_id in tags.values_list("endpoint_id", "tag_id"):
        if str(endpoint_id) in shot.endpoints:
            shot.endpoints[str(endpoint_id)].tag_ids.add(str(tag_id))
    agents = Agent.objects.filter(section__tenant__in=tenants).select_related("section")
    shot.agents = {str(agent.pk): agent for agent in agents}
    shot.online = {pk for pk, agent in shot.agents.items() if agent.status(now=now) == AgentStatus.ONLINE}
    series = RollupSeries.objects.filter(agent__section__tenant__in=tenants)
    known = {}
    for pk, endpoint_id, agent_id, check_type in series.values_list("pk", "endpoint_id", "agent_id", "check_type"):
        endpoint_id, agent_id = str(endpoint_id), str(agent_id)
        if endpoint_id not in shot.endpoints or agent_id not in shot.online:
            continue
        if shot.agents[agent_id].section.tenant_id == shot.endpoints[endpoint_id].tenant_id:  # (moved: no)
            known[pk] = (endpoint_id, agent_id, check_type)
    needs_histograms: dict[int, bool] = defaultdict(bool)
    for rule in rules:
        if rule.metric != Metric.AGENT_OFFLINE:
            needs_histograms[rule.window_seconds] |= (
                rule.metric == Metric.RESPONSE_TIME and rule.aggregation.startswith("p")
            )
    for window, histograms in needs_histograms.items():
        per_tenant = defaultdict(list)
        for series_id, cell in _window_cells(series, now, window, histograms).items():
            if series_id not in known:
                continue
            endpoint_id, agent_id, check_type = known[series_id]
            per_tenant[shot.endpoints[endpoint_id].tenant_id].append((endpoint_id, agent_id, check_type, cell))
        shot.windows[window] = per_tenant
    return shot


_SUMMED = ("check_count", "success_count", "failure_count", "packets_sent", "packets_received")
_SUMMED += ("latency_count", "latency_sum")


def _window_cells(series, now: datetime, window: int, histograms: bool) -> dict[int, Cell]:
    """series id -> its aggregates over the minutes of the last ``window`` seconds (this minute
    included), added up in the database. ``series`` is a queryset: the database walks the (series,
    bucket) key per series instead of receiving thousands of ids."""
    since = (now - timedelta(seconds=window)).replace(second=0, microsecond=0)
    rows = MinuteRollup.objects.filter(bucket__gte=since, bucket__lte=now, series_id__in=series.values("pk"))
    cells: dict[int, Cell] = {}
    grouped = rows.order_by().values("series_id")
    grouped = grouped.annotate(
        **{f"s_{name}": Sum(name) for name in _SUMMED}, low=Min("latency_min"), high=Max("latency_max")
    )
    joined = histograms and connection.vendor == "postgresql"
    if joined:  # one byte string per series (entries may repeat a bucket, decoding adds them up)
        grouped = grouped.annotate(hist=JoinedBytes("histogram"))
    for row in grouped:
        cell = Cell(**{name: row[f"s_{name}"] or 0 for name in _SUMMED})
        cell.latency_min, cell.latency_max = row["low"], row["high"]
        if joined:
            histogram_decode(row["hist"], cell.histogram)
        cells[row["series_id"]] = cell
    if histograms and not joined:
        for series_id, histogram in rows.values_list("series_id", "histogram").iterator(chunk_size=5000):
            if series_id in cells:  # a row that arrived between the two reads waits for the next pass
                histogram_decode(histogram, cells[series_id].histogram)
    return cells


class JoinedBytes(Aggregate):
    """PostgreSQL's string_agg over bytea: a series' stored histograms as one byte string."""

    function = "string_agg"
    template = "%(function)s(%(expressions)s, ''::bytea)"
    output_field = BinaryField()


# ---------------------------------------------------------------------------------------------
# The condition


def metric_value(rule: AlertRule, cell: Cell) -> float | None:
    """The rule's metric over a cell (None: nothing to judge, e.g. no ping packets for loss)."""
    if rule.metric == Metric.STATUS:
        return float(cell.success_count)
    if rule.metric == Metric.UPTIME:
        return cell.success_count / cell.check_count * 100 if cell.check_count else None
    if rule.metric == Metric.LOSS:
        sent = cell.packets_sent
        return (sent - cell.packets_received) / sent * 100 if sent else None
    if not cell.latency_count:
        return None
    if rule.aggregation == "avg":
        return cell.latency_sum / cell.latency_count
    if rule.aggregation == "min":
        return cell.latency_min
    if rule.aggregation == "max":
        return cell.latency_max
    return percentile(cell.histogram, float(rule.aggregation[1:]), low=cell.latency_min, high=cell.latency_max)


def breaches(rule: AlertRule, value: float | None) -> bool:
    if value is None:
        return False
    if rule.metric == Metric.STATUS:
        return value == 0  # no check succeeded: operator and threshold do not apply
    return {
        "greater_than": value > rule.threshold,
        "less_than": value < rule.threshold,
        "equals": value == rule.threshold,
        "not_equals": value != rule.threshold,
    }[rule.operator]


# ---------------------------------------------------------------------------------------------
# Judging one rule: which subjects hold the condition now


@dataclass
class Finding:
    """A subject whose condition holds now, with what the incident should say."""

    kind: str
    endpoint_id: object = None
    agent_id: object = None
    failing: list = field(default_factory=list)
    ok: list = field(default_factory=list)
    value: float | None = None
    detail: str = ""

    @property
    def subject(self) -> str:
        return f"{self.kind}:{self.endpoint_id if self.kind == IncidentKind.ENDPOINT else self.agent_id}"


def _filter_ids(rule: AlertRule, name: str) -> set[str]:
    return {str(value) for value in (rule.filters or {}).get(name) or []}


def _outside(allowed: set[str], value) -> bool:
    """Whether a filter list (empty: everything) leaves ``value`` out."""
    return bool(allowed) and str(value) not in allowed


def _filters(rule: AlertRule) -> tuple:
    types = {METRIC_ALIASES.get(name, name) for name in (rule.filters or {}).get("metric_types") or []}
    if rule.metric == Metric.LOSS:
        types = (types or {"ping"}) & {"ping"}
    names = ("section_ids", "endpoint_ids", "endpoint_tag_ids", "agent_ids")
    return (*(frozenset(_filter_ids(rule, name)) for name in names), frozenset(types))


def rule_scope(rule: AlertRule, shot: Snapshot) -> Scope:
    """The rule's (endpoint, agent) cells over its window, merged over the check types its filter
    allows, online agents only (shared by every rule with the same window and filters)."""
    key = (rule.tenant_id, rule.window_seconds, _filters(rule))
    if key in shot.scopes:
        return shot.scopes[key]
    sections, endpoints, tags, agent_ids, types = key[2]
    scope = shot.scopes[key] = Scope()
    for endpoint_id, agent_id, check_type, cell in shot.windows.get(rule.window_seconds, {}).get(rule.tenant_id, ()):
        endpoint = shot.endpoints[endpoint_id]
        if types and check_type not in types:
            continue
        if _outside(sections, endpoint.section_id) or _outside(endpoints, endpoint_id) or _outside(agent_ids, agent_id):
            continue
        if tags and not tags & endpoint.tag_ids:
            continue
        pair = (endpoint_id, agent_id)
        if pair not in scope.cells:
            scope.cells[pair] = Cell()
            scope.reporters[endpoint_id].add(agent_id)
            scope.per_agent[agent_id].add(endpoint_id)
        scope.cells[pair].add(cell)
    return scope


def _verdict(rule: AlertRule, scope: Scope, shot: Snapshot) -> tuple[dict, set]:
    """(values per pair, the pairs that breach): shared by rules with the same scope and condition."""
    key = (id(scope), rule.metric, rule.operator, rule.threshold, rule.aggregation)
    if key not in shot.verdicts:
        values = {pair: metric_value(rule, cell) for pair, cell in scope.cells.items()}
        shot.verdicts[key] = (values, {pair for pair, value in values.items() if breaches(rule, value)})
    return shot.verdicts[key]


def findings(rule: AlertRule, shot: Snapshot) -> list[Finding]:
    """What the rule finds now (rules with the same scope, condition and quorum share the answer)."""
    if rule.metric == Metric.AGENT_OFFLINE:
        return _offline_findings(rule, shot)
    scope = rule_scope(rule, shot)
    key = (id(scope), rule.metric, rule.operator, rule.threshold, rule.aggregation)
    _values, failing = _verdict(rule, scope, shot)
    if not failing:
        return []
    quorum = (*key, rule.quorum_min_agents, rule.quorum_min_percent)
    if quorum not in shot.found:
        shot.found[quorum] = _judged(rule, scope, failing)
    return shot.found[quorum]


def quorum_share(percent: float, agents: int) -> int:
    """ceil(percent % of agents), without float noise: 28 % of 25 agents is 7, not 8."""
    return math.ceil(round(percent * agents / 100, 9))


def _judged(rule: AlertRule, scope: Scope, failing: set) -> list[Finding]:
    cells, reporters = scope.cells, scope.reporters
    out, broken = [], set()
    for agent_id in {agent for _endpoint, agent in failing}:
        endpoints = scope.per_agent[agent_id]
        bad = {endpoint_id for endpoint_id in endpoints if (endpoint_id, agent_id) in failing}
        if len(bad) < max(NETWORK_MIN_ENDPOINTS, NETWORK_SHARE * len(endpoints)):
            continue
        fine = 0
        for endpoint_id in bad:
            others = reporters[endpoint_id] - {agent_id}
            failing_others = sum(1 for other in others if (endpoint_id, other) in failing)
            fine += bool(others) and failing_others * 2 < len(others)
        if fine >= NETWORK_SHARE * len(bad):
            broken.add(agent_id)
            detail = f"{len(bad)} of the {len(endpoints)} endpoints it checks fail for it alone."
            value = len(bad) / len(endpoints) * 100
            out.append(Finding(IncidentKind.AGENT_NETWORK, agent_id=agent_id, value=value, detail=detail))
    for endpoint_id in sorted({endpoint for endpoint, _agent in failing}):
        judged = reporters[endpoint_id] - broken
        bad = sorted(agent for agent in judged if (endpoint_id, agent) in failing)
        needed = max(rule.quorum_min_agents, quorum_share(rule.quorum_min_percent, len(judged)))
        if not bad or len(bad) < needed:
            continue
        total = Cell()
        for agent in judged:
            total.add(cells[(endpoint_id, agent)])
        ok = sorted(judged - set(bad))
        detail = f"{len(bad)} of {len(judged)} agents breach (quorum {needed})."
        finding = Finding(IncidentKind.ENDPOINT, endpoint_id=endpoint_id, failing=bad, ok=ok, detail=detail)
        finding.value = metric_value(rule, total)
        out.append(finding)
    return out


def _offline_findings(rule: AlertRule, shot: Snapshot) -> list[Finding]:
    sections, agent_ids = _filter_ids(rule, "section_ids"), _filter_ids(rule, "agent_ids")
    out = []
    for agent in shot.agents.values():
        if agent.section.tenant_id != rule.tenant_id or agent.status(now=shot.now) != AgentStatus.OFFLINE:
            continue
        if _outside(sections, agent.section_id) or _outside(agent_ids, agent.pk):
            continue
        silent = (shot.now - agent.last_seen_at).total_seconds()
        out.append(
            Finding(
                IncidentKind.AGENT_OFFLINE,
                agent_id=str(agent.pk),
                value=silent,
                detail=f"Not heard from for {silent:.0f} s.",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Turning findings into incidents


def evaluate(*, now: datetime | None = None) -> PassStats:
    """One pass over every enabled rule."""
    started = time.perf_counter()
    now = now or timezone.now()
    stats = PassStats()
    _close_orphans(now, stats)
    rules = list(AlertRule.objects.filter(enabled=True).order_by("tenant_id", "pk"))
    if rules:
        shot = snapshot(rules, now)
        by_tenant: dict = defaultdict(list)
        for rule in rules:
            by_tenant[rule.tenant_id].append(rule.pk)
        for tenant_id, rule_ids in by_tenant.items():
            try:
                _judge_tenant(tenant_id, rule_ids, shot, stats)
            except Exception:  # one tenant's failure (its transaction rolled back) must not stop the others
                stats.failed_tenants += 1
                log.exception("evaluating a tenant's rules failed", extra={"tenant_id": str(tenant_id)})
    stats.seconds = time.perf_counter() - started
    return stats


@transaction.atomic
def _close_orphans(now: datetime, stats: PassStats) -> None:
    """Open incidents of rules switched off are resolved (quietly: nobody asked to hear about them)."""
    for incident in Incident.objects.filter(status__in=OPEN, rule__enabled=False).select_for_update(of=("self",)):
        incident.status, incident.resolved_at = IncidentStatus.RESOLVED, now
        incident.save(update_fields=["status", "resolved_at"])
        IncidentEvent.objects.create(incident=incident, at=now, kind="resolved", data={"reason": "rule disabled"})
        stats.resolved += 1
    # Forget how long conditions held: re-enabled, a rule waits its duration_seconds again.
    AlertState.objects.filter(rule__enabled=False).delete()


@transaction.atomic
def _judge_tenant(tenant_id, rule_ids: list, shot: Snapshot, stats: PassStats) -> None:
    locked = AlertRule.objects.filter(pk__in=rule_ids, enabled=True)
    if connection.features.has_select_for_update_skip_locked:
        locked = locked.select_for_update(skip_locked=True)
    rules = list(locked.prefetch_related("channels").order_by("pk"))  # skipped: another evaluator has them
    if not rules:
        return
    windows = windows_now(tenant_id, shot.now)
    opened = {}
    for incident in Incident.objects.filter(rule__in=rules, status__in=OPEN).select_related(
        "rule", "endpoint", "agent"
    ):
        opened[(incident.rule_id, _subject_of(incident))] = incident
    states = {(state.rule_id, state.subject): state for state in AlertState.objects.filter(rule__in=rules)}
    for rule in rules:
        stats.rules += 1
        found = {finding.subject: finding for finding in findings(rule, shot)}
        subjects = set(found) | {subject for (rule_id, subject) in opened if rule_id == rule.pk}
        subjects |= {subject for (rule_id, subject) in states if rule_id == rule.pk}
        for subject in sorted(subjects):
            _step(
                rule,
                subject,
                found.get(subject),
                opened.get((rule.pk, subject)),
                states.get((rule.pk, subject)),
                shot,
                windows,
                stats,
            )


def _subject_of(incident: Incident) -> str:
    return f"{incident.kind}:{incident.endpoint_id if incident.kind == IncidentKind.ENDPOINT else incident.agent_id}"


def _step(rule, subject, finding, incident, state, shot: Snapshot, windows, stats: PassStats) -> None:
    """One subject of one rule: the duration_seconds state machine."""
    now, hold = shot.now, timedelta(seconds=rule.duration_seconds)
    if incident is None:
        if finding is None:
            if state is not None:
                state.delete()
            return
        since = state.breaching_since if state is not None and state.breaching_since else now
        if now - since >= hold:
            _open(rule, finding, shot, windows)
            stats.opened += 1
            if state is not None:
                state.delete()
        elif state is None:
            AlertState.objects.create(rule=rule, subject=subject, breaching_since=since)
        elif state.breaching_since is None:
            state.breaching_since, state.clear_since = since, None
            state.save(update_fields=["breaching_since", "clear_since"])
        return
    if finding is not None:
        _update(incident, finding, now)
        if state is not None and state.clear_since is not None:
            state.delete()
        stats.reminders += _remind(rule, incident, now, windows)
        return
    since = state.clear_since if state is not None and state.clear_since else now
    if now - since >= hold:
        _resolve(rule, incident, now, windows)
        stats.resolved += 1
        if state is not None:
            state.delete()
    elif state is None:
        AlertState.objects.create(rule=rule, subject=subject, clear_since=since)
    elif state.clear_since is None:
        state.clear_since, state.breaching_since = since, None
        state.save(update_fields=["clear_since", "breaching_since"])


def _covered(incident_or_finding, shot: Snapshot, windows) -> bool:
    endpoint = shot.endpoints.get(incident_or_finding.endpoint_id) if incident_or_finding.endpoint_id else None
    agent = shot.agents.get(incident_or_finding.agent_id) if incident_or_finding.agent_id else None
    section = endpoint.section_id if endpoint else (agent.section_id if agent else None)
    return in_maintenance(
        windows, section_id=section, endpoint_id=incident_or_finding.endpoint_id, agent_id=incident_or_finding.agent_id
    )


def _open(rule: AlertRule, finding: Finding, shot: Snapshot, windows) -> Incident:
    endpoint = shot.endpoints.get(finding.endpoint_id) if finding.endpoint_id else None
    agent = shot.agents.get(finding.agent_id) if finding.agent_id else None
    target = (f"{endpoint.address}:{endpoint.port}" if endpoint.port else endpoint.address) if endpoint else ""
    maintenance = _covered(finding, shot, windows)
    incident = Incident.objects.create(
        tenant_id=rule.tenant_id,
        rule=rule,
        kind=finding.kind,
        severity=rule.severity,
        title=_title(rule, finding, target, agent)[:TITLE_LENGTH],
        description=f"{rule.name}: {finding.detail}",
        endpoint=endpoint,
        target=target,
        agent=agent,
        failing_agents=finding.failing,
        ok_agents=finding.ok,
        metric_type=rule.metric,
        threshold_value=None if rule.metric in (Metric.STATUS, Metric.AGENT_OFFLINE) else rule.threshold,
        current_value=_rounded(finding.value),
        in_maintenance=maintenance,
        created_at=shot.now,
    )
    IncidentEvent.objects.create(incident=incident, at=shot.now, kind="opened", data=_vantage(finding))
    notifications_enqueue(incident, "alert.opened", now=shot.now, suppressed=maintenance)
    log.info("incident opened", extra={"incident_id": str(incident.pk), "rule_id": str(rule.pk), "kind": finding.kind})
    return incident


def _title(rule: AlertRule, finding: Finding, target: str, agent) -> str:
    if finding.kind == IncidentKind.AGENT_OFFLINE:
        return f"Agent {agent.name} is offline"
    if finding.kind == IncidentKind.AGENT_NETWORK:
        return f"Agent {agent.name}: its network fails most of its checks"
    if rule.metric == Metric.STATUS:
        return f"{target} is unreachable"
    label = {
        "uptime_percent": "uptime",
        "packet_loss_percent": "packet loss",
        "response_time_ms": f"{rule.aggregation} response time",
    }
    sign = {"greater_than": ">", "less_than": "<", "equals": "=", "not_equals": "≠"}[rule.operator]
    return f"{target}: {label[rule.metric]} {sign} {rule.threshold:g}"


def _vantage(finding: Finding) -> dict:
    return {"failing_agents": finding.failing, "ok_agents": finding.ok, "value": _rounded(finding.value)}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _update(incident: Incident, finding: Finding, now: datetime) -> None:
    """Keep the vantage points and the value current; a change of who fails is in the history."""
    value = _rounded(finding.value)
    if (incident.failing_agents, incident.ok_agents, incident.current_value) == (finding.failing, finding.ok, value):
        return
    if (incident.failing_agents, incident.ok_agents) != (finding.failing, finding.ok):
        IncidentEvent.objects.create(incident=incident, at=now, kind="updated", data=_vantage(finding))
    incident.failing_agents, incident.ok_agents, incident.current_value = finding.failing, finding.ok, value
    incident.save(update_fields=["failing_agents", "ok_agents", "current_value"])


def _remind(rule: AlertRule, incident: Incident, now: datetime, windows) -> int:
    """A reminder every cooldown_seconds while active and unacknowledged (none in maintenance)."""
    if rule.cooldown_seconds == 0 or incident.status != IncidentStatus.ACTIVE or incident.in_maintenance:
        return 0
    last = incident.last_notified_at or incident.created_at
    if now - last < timedelta(seconds=rule.cooldown_seconds):
        return 0
    suppressed = _incident_covered(incident, windows)
    sent = notifications_enqueue(incident, "alert.reminder", now=now, suppressed=suppressed)
    if not sent:  # nothing to send (no channel, or maintenance): count the cooldown from now
        Incident.objects.filter(pk=incident.pk).update(last_notified_at=now)
        incident.last_notified_at = now
    return sent


def _incident_covered(incident: Incident, windows) -> bool:
    """Whether a maintenance window covers the incident's endpoint or agent (or their section) now."""
    section = (
        incident.endpoint.section_id
        if incident.endpoint_id
        else incident.agent.section_id
        if incident.agent_id
        else None
    )
    return in_maintenance(windows, section_id=section, endpoint_id=incident.endpoint_id, agent_id=incident.agent_id)


def _resolve(rule: AlertRule, incident: Incident, now: datetime, windows) -> None:
    incident.status, incident.resolved_at = IncidentStatus.RESOLVED, now
    incident.save(update_fields=["status", "resolved_at"])
    IncidentEvent.objects.create(incident=incident, at=now, kind="resolved")
    if rule.notify_on_resolve:
        covered = _incident_covered(incident, windows)
        notifications_enqueue(incident, "alert.resolved", now=now, suppressed=incident.in_maintenance or covered)
    log.info("incident resolved", extra={"incident_id": str(incident.pk), "rule_id": str(rule.pk)})
