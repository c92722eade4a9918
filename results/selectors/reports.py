"""``/result/report``: aggregated buckets read from the rollups, tenant-scoped.

Rows come from the minute rollups for sub-hour aggregations, the daily ones for 1d and the hourly
ones otherwise (or when the window reaches back past the minute retention: the answer then says
``1h``). The database groups the rows and adds up counts and sums (and so filters by status and
pages), and counts the rows and totals of the whole report in the same query, as window aggregates
over every group; percentiles come from adding the histograms of a page's rows
(results/histogram.py), never from averaging percentiles. Buckets without results are absent, so a
chart shows a gap."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Count,
    DateTimeField,
    F,
    FloatField,
    Func,
    Max,
    Min,
    Q,
    Sum,
    Value,
    When,
)

from agents.models import Agent
from endpoints.models import Endpoint
from results.histogram import histogram_decode, percentiles
from results.models import DayRollup, HourRollup, MinuteRollup, RollupSeries
from results.rollups import Cell

AGGREGATIONS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400}
SUB_HOUR = {"1m", "5m", "15m"}
METRIC_TYPES = ("ping", "tcpconnect", "udpconnect", "httpget", "traceroute", "plugin")
# The upstream API's names for the same checks.
METRIC_ALIASES = {"icmp_ping": "ping", "tcp_check": "tcpconnect", "http_check": "httpget", "custom": "plugin"}
STATUSES = ("reachable", "unreachable", "degraded")


@dataclass(frozen=True)
class ReportQuery:
    start: datetime
    end: datetime
    aggregation: str = "5m"
    agent_ids: tuple = ()
    endpoint_ids: tuple = ()
    metric_types: tuple = ()
    section_id: object = None
    target: str = ""
    statuses: tuple = ()
    group_by: str = "agent"


# Rollup rows added up into one report row.
Bucket = Cell


def report_source(query: ReportQuery, now: datetime) -> tuple[type, str]:
    """The rollup table to read and the aggregation actually used: daily rows for 1d, minute rows
    for sub-hour ones unless the window reaches past their retention, hourly rows otherwise."""
    minute_floor = now - timedelta(seconds=settings.SMOTRA.results.minute_rollup_retention)
    if query.aggregation in SUB_HOUR and query.start >= minute_floor:
        return MinuteRollup, query.aggregation
    if query.aggregation == "1d":
        return DayRollup, "1d"
    return HourRollup, "1h" if query.aggregation in SUB_HOUR else query.aggregation


def visible_endpoints(user, query: ReportQuery):
    """The endpoints a report may cover: the user's tenants', narrowed by the query's filters."""
    endpoints = Endpoint.objects.visible_to(user)
    if query.endpoint_ids:
        endpoints = endpoints.filter(pk__in=query.endpoint_ids)
    if query.section_id:
        endpoints = endpoints.filter(section_id=query.section_id)
    if query.target:
        address, _, port = query.target.rpartition(":") if _has_port(query.target) else (query.target, "", "")
        endpoints = endpoints.filter(address=address, **({"port": int(port)} if port else {}))
    return endpoints


_PORT = re.compile(r"[0-9]{1,5}")


def _has_port(target: str) -> bool:
    head, sep, tail = target.rpartition(":")
    # ASCII digits only: str.isdigit() is also true of "²", which int() refuses.
    return bool(sep) and bool(_PORT.fullmatch(tail)) and "://" not in target and head.count(":") == 0


def report(user, query: ReportQuery, *, now: datetime | None = None) -> tuple[str, list[dict], dict]:
    """(the aggregation used, every row of the report in order, totals over those rows)."""
    plan = _plan(user, query, now)
    rows, _count, totals = plan.page(0, CHUNK)
    for offset in itertools.count(CHUNK, CHUNK):
        if len(rows) < offset:
            break
        rows += plan.rows(offset, CHUNK)
    return plan.aggregation, rows, totals


def report_page(
    user, query: ReportQuery, *, page: int, size: int, now: datetime | None = None
) -> tuple[str, list[dict], int, dict]:
    """(the aggregation used, the rows of one page, how many rows in all, totals over all rows):
    the database adds up counts and sums; histograms are merged for the page's rows only."""
    plan = _plan(user, query, now)
    rows, count, totals = plan.page((page - 1) * size, size)
    return plan.aggregation, rows, count, totals


CHUNK = 5000
PERCENTILES = (50, 95, 99)
TIER_SECONDS = {MinuteRollup: 60, HourRollup: 3600, DayRollup: 86400}


class OverAll(Func):
    """``SUM(x) OVER ()``: a total over every row of the query, computed by the query that reads a
    page of them. In a grouped query ``x`` is the group's own aggregate and the total is over the
    groups. Like Django's Window, it is never a GROUP BY key."""

    template = "%(function)s(%(expressions)s) OVER ()"
    function = "SUM"
    contains_over_clause = True

    def get_group_by_cols(self):
        return []


class BucketStart(Func):
    """The start of the ``seconds``-wide bucket a rollup's own bucket is in (UTC, from the epoch)."""

    output_field = DateTimeField()

    def __init__(self, expression, seconds: int):
        super().__init__(expression)
        self.seconds = seconds

    def as_postgresql(self, compiler, connection):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"date_bin('{self.seconds} seconds'::interval, {sql}, TIMESTAMPTZ '1970-01-01 00:00:00+00')", params

    def as_sqlite(self, compiler, connection):
        sql, params = compiler.compile(self.source_expressions[0])
        floor = f"(CAST(strftime('%%s', {sql}) AS INTEGER) / {self.seconds}) * {self.seconds}"
        return f"strftime('%%Y-%%m-%%d %%H:%%M:%%S', {floor}, 'unixepoch')", params


_SUMS = {
    "check_count": "check_count",
    "success_count": "success_count",
    "failure_count": "failure_count",
    "packets_sent": "packets_sent",
    "packets_received": "packets_received",
    "latency_count": "latency_count",
    "latency_sum": "latency_sum",
}
# Aggregates get names of their own: an annotation may not reuse a model field's name.
_AGGREGATES = {f"sum_{name}": Sum(column) for name, column in _SUMS.items()}
_AGGREGATES |= {"low": Min("latency_min"), "high": Max("latency_max")}
_STATE = Case(
    When(sum_success_count=0, then=Value("unreachable")),
    When(Q(sum_failure_count__gt=0) | Q(sum_packets_received__lt=F("sum_packets_sent")), then=Value("degraded")),
    default=Value("reachable"),
    output_field=CharField(),
)


@dataclass
class _Plan:
    """One report's query: rollup rows of the chosen tier, grouped in the database."""

    aggregation: str
    model: type
    width: int
    grouped: object  # the GROUP BY queryset, in report order
    window: tuple[datetime, datetime]  # the report's [start, end)
    series: dict  # series id -> (endpoint_id, agent_id, check_type)
    endpoints: dict
    names: dict
    group_by: str

    def totals(self) -> tuple[int, dict]:
        """How many rows, and the metadata over all of them, in one query."""
        if not self.series:
            return 0, _metadata(0, 0, 0, 0, 0.0)
        totals = {f"all_{name}": Sum(f"sum_{name}") for name in _TOTALLED}
        sums = self.grouped.order_by().aggregate(all_rows=Count("start"), **totals)
        return sums["all_rows"], _totals_metadata(sums)

    def rows(self, offset: int, size: int) -> list[dict]:
        if not self.series:
            return []
        return self._rows(list(self.grouped[offset : offset + size]))

    def page(self, offset: int, size: int) -> tuple[list[dict], int, dict]:
        """(the rows of one page, how many rows in all, the metadata over all of them): one query,
        which counts and totals every row with window aggregates while it reads the page. Past
        the last row nothing comes back to count on, and the totals take a query of their own."""
        if not self.series:
            return [], *self.totals()
        grouped = not self.one_row_per_group
        totals = {
            f"all_{name}": OverAll(Sum(name) if grouped else F(name), output_field=field)
            for name, field in _TOTALLED.items()
        }
        totals["all_rows"] = OverAll(Value(1), function="COUNT", output_field=BigIntegerField())
        groups = list(self.grouped.annotate(**totals)[offset : offset + size])
        if not groups:
            return [], *self.totals()
        return self._rows(groups), groups[0]["all_rows"], _totals_metadata(groups[0])

    def _rows(self, groups: list[dict]) -> list[dict]:
        histograms = {} if self.one_row_per_group else self._histograms(groups)
        out = []
        for group in groups:
            key = self._key(group)
            cell = Bucket(**{name: group[f"sum_{name}"] for name in _SUMS})
            cell.latency_min, cell.latency_max = group["low"], group["high"]
            cell.histogram = histogram_decode(group["hist"]) if self.one_row_per_group else histograms.get(key, {})
            out.append(_row(key, cell, self.endpoints, self.names))
        return out

    @property
    def one_row_per_group(self) -> bool:
        """Per agent at the tier's own resolution each group is one stored row: read as it is."""
        return self.group_by == "agent" and self.width == TIER_SECONDS[self.model]

    def _key(self, group: dict) -> tuple:
        agent = group["series__agent_id"] if self.group_by == "agent" else None
        return (_utc(group["start"]), group["series__endpoint_id"], agent, group["series__check_type"])

    def _histograms(self, groups: list[dict]) -> dict[tuple, dict]:
        """The merged histograms of the page's rows, read for the page's buckets and series only
        (joining every group's histograms in the grouping query would sort all of them, on disk)."""
        wanted = {self._key(group) for group in groups if group["sum_latency_count"]}
        if not wanted:
            return {}
        pairs = {(endpoint_id, check_type) for _start, endpoint_id, _agent, check_type in wanted}
        series = [pk for pk, (endpoint_id, _a, check_type) in self.series.items() if (endpoint_id, check_type) in pairs]
        first = min(key[0] for key in wanted)
        last = max(key[0] for key in wanted) + timedelta(seconds=self.width)
        # The report's window bounds a group's rows too (a 6h group may start before start_time); the
        # report's own filter is not repeated: it lists every series of the report (hundreds).
        first, last = max(first, self.window[0]), min(last, self.window[1])
        rows = self.model.objects.filter(series_id__in=series, bucket__gte=first, bucket__lt=last)
        merged: dict[tuple, dict] = {}
        for series_id, bucket, histogram in rows.values_list("series_id", "bucket", "histogram"):
            endpoint_id, agent_id, check_type = self.series[series_id]
            start = datetime.fromtimestamp(int(bucket.timestamp()) // self.width * self.width, UTC)
            key = (start, endpoint_id, agent_id if self.group_by == "agent" else None, check_type)
            if key in wanted:
                histogram_decode(histogram, merged.setdefault(key, {}))
        return merged


# What the metadata adds up over every row, in _metadata's order, with each total's type.
_TOTALLED = {
    "check_count": BigIntegerField(),
    "success_count": BigIntegerField(),
    "failure_count": BigIntegerField(),
    "latency_count": BigIntegerField(),
    "latency_sum": FloatField(),
}


def _plan(user, query: ReportQuery, now: datetime | None) -> _Plan:
    now = now or datetime.now(UTC)
    model, aggregation = report_source(query, now)
    width = AGGREGATIONS[aggregation]
    visible = visible_endpoints(user, query)
    endpoints = {endpoint.pk: endpoint for endpoint in visible.only("id", "address", "port", "section_id")}
    agents = Agent.objects.visible_to(user)
    if query.agent_ids:
        agents = agents.filter(pk__in=query.agent_ids)
    names = dict(agents.values_list("pk", "name"))
    scope = series_in(visible, agents, query.metric_types)
    series = series_of(scope)
    source = model.objects.filter(series_id__in=scope.values("pk"), bucket__gte=query.start, bucket__lt=query.end)
    agent = ["series__agent_id"] if query.group_by == "agent" else []
    keys = ["series__endpoint_id", *agent, "series__check_type"]
    if query.group_by == "agent" and width == TIER_SECONDS[model]:  # one stored row per report row
        columns = {f"sum_{name}": F(name) for name in _SUMS} | {"low": F("latency_min"), "high": F("latency_max")}
        grouped = source.annotate(start=F("bucket"), hist=F("histogram"), **columns).annotate(state=_STATE)
        grouped = grouped.values("start", *keys, "hist", *columns)
    else:
        start = F("bucket") if width == TIER_SECONDS[model] else BucketStart("bucket", width)
        grouped = source.annotate(start=start).values("start", *keys).annotate(**_AGGREGATES).annotate(state=_STATE)
    if query.statuses:
        grouped = grouped.filter(state__in=query.statuses)
    grouped = grouped.order_by("start", *keys)
    window = (query.start, query.end)
    return _Plan(aggregation, model, width, grouped, window, series, endpoints, names, query.group_by)


def series_in(endpoints, agents, metric_types=()):
    """The rollup series of these endpoints and agents (querysets, so that the database joins
    them: a section's 2,000 series as an IN list of ids took longer to build and send than
    the query took to run; bench/readside.py) and check types."""
    series = RollupSeries.objects.filter(endpoint_id__in=endpoints.values("pk"), agent_id__in=agents.values("pk"))
    return series.filter(check_type__in=metric_types) if metric_types else series


def series_of(series) -> dict[int, tuple]:
    """series id -> (endpoint_id, agent_id, check_type) of a ``series_in`` queryset."""
    return {pk: (e, a, t) for pk, e, a, t in series.values_list("pk", "endpoint_id", "agent_id", "check_type")}


def _totals_metadata(totals: dict) -> dict:
    """The metadata from the ``all_*`` totals of _TOTALLED (None: no row had any)."""
    return _metadata(*(totals[f"all_{name}"] or 0 for name in _TOTALLED))


def _utc(moment) -> datetime:
    # SQLite hands date_bin's stand-in back as a naive UTC time.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _metadata(checks: int, ok: int, failed: int, samples: int, latency: float) -> dict:
    return {
        "total_checks": checks,
        "successful_checks": ok,
        "failed_checks": failed,
        "average_response_time_ms": _ms(latency / samples) if samples else None,
    }


def bucket_status(bucket: Bucket) -> str:
    """reachable: every check succeeded and nothing was lost; unreachable: none succeeded.
    (The report computes the same in SQL, ``_STATE``, to filter and count in the database.)"""
    if bucket.success_count == 0:
        return "unreachable"
    lost = bucket.packets_sent and bucket.packets_received < bucket.packets_sent
    return "degraded" if bucket.failure_count or lost else "reachable"


def _row(key: tuple, bucket: Bucket, endpoints: dict, names: dict) -> dict:
    start, endpoint_id, agent_id, check_type = key
    endpoint = endpoints[endpoint_id]
    samples = bucket.latency_count
    loss = None
    if check_type == "ping" and bucket.packets_sent:
        loss = round((bucket.packets_sent - bucket.packets_received) / bucket.packets_sent * 100, 2)
    bounds = {"low": bucket.latency_min, "high": bucket.latency_max}
    return {
        "timestamp": start,
        "agent_id": agent_id,
        "hostname": names.get(agent_id) if agent_id else None,
        "endpoint_id": endpoint_id,
        "target": f"{endpoint.address}:{endpoint.port}" if endpoint.port else endpoint.address,
        "metric_type": check_type,
        "status": bucket_status(bucket),
        "check_count": bucket.check_count,
        "successful_checks": bucket.success_count,
        "failed_checks": bucket.failure_count,
        "success_rate_percent": round(bucket.success_count / bucket.check_count * 100, 2),
        "packet_loss_percent": loss,
        "avg_response_time_ms": _ms(bucket.latency_sum / samples) if samples else None,
        "min_response_time_ms": _ms(bucket.latency_min) if samples else None,
        "max_response_time_ms": _ms(bucket.latency_max) if samples else None,
        **{
            f"p{p}_response_time_ms": _ms(value)
            for p, value in zip(PERCENTILES, percentiles(bucket.histogram, PERCENTILES, **bounds), strict=True)
        },
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
