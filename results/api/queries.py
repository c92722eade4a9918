"""The results query API (upstream spelling): ``/result/report``, ``/result/metrics``, ``/result/summary``.

Read by any member of a tenant (viewer and up), through the one tenant filter: ids of other tenants
simply match nothing. Parameters are validated by serializers, which drf-spectacular documents as
query parameters and whose errors name the parameter (400 ``validation_error``). They are not
django-filter FilterSets: these are inputs of an aggregation (a window, a bucket width, a grouping,
an output format), not filters of one model's queryset."""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import UTC, datetime, timedelta

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from endpoints.models import Endpoint
from results.selectors.raw import RawQuery, error_message, packet_loss_percent, page_of, raw_results, result_as_sent
from results.selectors.reports import (
    AGGREGATIONS,
    METRIC_ALIASES,
    METRIC_TYPES,
    STATUSES,
    ReportQuery,
    report,
    report_page,
)
from results.selectors.summary import TIME_RANGES, summary
from smotra.api.renderers import FastJSONRenderer, json_only

TAGS = ["results"]
MAX_SPAN = timedelta(days=400)
METRIC_CHOICES = [*METRIC_TYPES, *METRIC_ALIASES]


class JsonOnlyNegotiation:
    """``format`` is our parameter (json or csv), not DRF's renderer switch: DRF would answer an
    unknown ``?format=`` with a 404 before the parameter could be validated."""

    renderer_classes = [FastJSONRenderer]
    perform_content_negotiation = json_only


# RFC 3339 (section 5.6): full date, "T" (or a space, or lower case), full time, a zone. Python's
# fromisoformat() alone would also take dates without a time, basic formats and times without a zone.
_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d{1,9}))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})?"
)


class Rfc3339Field(serializers.DateTimeField):
    """An RFC 3339 instant with its time zone, in UTC. DRF's DateTimeField would read a time without
    a zone in the server's zone instead of refusing it."""

    default_error_messages = {
        "rfc3339": "Must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z (a + in the query string is %2B).",
        "naive": "Must carry a time zone (Z or an offset), as RFC 3339 requires.",
    }

    def to_internal_value(self, value):
        match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            self.fail("rfc3339")
        if match["zone"] is None:
            self.fail("naive")
        zone = "+00:00" if match["zone"] in "Zz" else match["zone"]
        fraction = f".{match['fraction'][:6]}" if match["fraction"] else ""
        try:
            return datetime.fromisoformat(f"{match['date']}T{match['time']}{fraction}{zone}").astimezone(UTC)
        except (ValueError, OverflowError):
            self.fail("rfc3339")


class Repeatable(serializers.ListField):
    """A repeatable query parameter whose errors name the parameter itself (not ``agent_id[0]``)."""

    def run_child_validation(self, data):
        result, errors = [], []
        for item in data:
            try:
                result.append(self.child.run_validation(item))
            except serializers.ValidationError as exc:
                errors += [f"{str(item)[:100]!r}: {message}" for message in _messages(exc.detail)]
        if errors:
            raise serializers.ValidationError(errors)
        return result


def _messages(detail) -> list[str]:
    if isinstance(detail, dict):
        return [message for value in detail.values() for message in _messages(value)]
    if isinstance(detail, list):
        return [message for value in detail for message in _messages(value)]
    return [str(detail)]


class QuerySerializer(serializers.Serializer):
    """Query parameters. An empty value (``?cursor=``) is refused like any other bad value: DRF would
    read it as absent (its HTML form rule), so a client sending back a null cursor as ``cursor=``
    would start again from the first page, forever."""

    def to_internal_value(self, data):
        values = data.getlist if hasattr(data, "getlist") else (lambda name: [data[name]])
        empty = [name for name in self.fields if name in data and "" in values(name)]
        if empty:
            raise serializers.ValidationError({name: ["May not be empty."] for name in empty})
        return super().to_internal_value(data)


class WindowQuerySerializer(QuerySerializer):
    start_time = Rfc3339Field(help_text="RFC 3339, with a time zone.")
    end_time = Rfc3339Field(help_text="RFC 3339, after start_time, at most 400 days later.")
    agent_id = Repeatable(child=serializers.UUIDField(), required=False, help_text="Repeatable.")
    endpoint_id = Repeatable(child=serializers.UUIDField(), required=False, help_text="Repeatable.")
    metric_type = Repeatable(
        child=serializers.ChoiceField(choices=METRIC_CHOICES),
        required=False,
        help_text="Repeatable: the agent's check types, or upstream's icmp_ping, tcp_check, http_check, custom.",
    )
    format = serializers.ChoiceField(choices=["json", "csv"], default="json")

    def validate_metric_type(self, value):
        return sorted({METRIC_ALIASES.get(name, name) for name in value})

    def window(self) -> dict:
        """The query fields every window query shares, from the validated parameters."""
        values = self.validated_data
        return {
            "start": values["start_time"],
            "end": values["end_time"],
            "agent_ids": tuple(values.get("agent_id", ())),
            "endpoint_ids": tuple(values.get("endpoint_id", ())),
            "metric_types": tuple(values.get("metric_type", ())),
        }

    def validate(self, data):
        if data["end_time"] <= data["start_time"]:
            raise serializers.ValidationError({"end_time": "Must be after start_time."})
        if data["end_time"] - data["start_time"] > MAX_SPAN:
            raise serializers.ValidationError({"end_time": "The window may span at most 400 days."})
        return data


# ---------------------------------------------------------------------------------------------
# /result/report


class ReportQuerySerializer(WindowQuerySerializer):
    aggregation = serializers.ChoiceField(choices=list(AGGREGATIONS), default="5m")
    section_id = serializers.UUIDField(required=False)
    target = serializers.CharField(required=False, max_length=2048, help_text="An endpoint address (host[:port]).")
    status = Repeatable(child=serializers.ChoiceField(choices=STATUSES), required=False, help_text="Repeatable.")
    group_by = serializers.ChoiceField(choices=["agent", "endpoint"], default="agent")
    page = serializers.IntegerField(min_value=1, max_value=1_000_000, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=1000, default=100)


class ReportRowSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField(help_text="Bucket start (UTC).")
    agent_id = serializers.UUIDField(allow_null=True, help_text="Null when group_by=endpoint.")
    hostname = serializers.CharField(allow_null=True, help_text="The agent's name.")
    endpoint_id = serializers.UUIDField()
    target = serializers.CharField()
    metric_type = serializers.CharField()
    status = serializers.ChoiceField(choices=STATUSES)
    check_count = serializers.IntegerField()
    successful_checks = serializers.IntegerField()
    failed_checks = serializers.IntegerField()
    success_rate_percent = serializers.FloatField()
    packet_loss_percent = serializers.FloatField(allow_null=True, help_text="Ping only: lost / sent x 100.")
    avg_response_time_ms = serializers.FloatField(allow_null=True)
    min_response_time_ms = serializers.FloatField(allow_null=True)
    max_response_time_ms = serializers.FloatField(allow_null=True)
    p50_response_time_ms = serializers.FloatField(allow_null=True)
    p95_response_time_ms = serializers.FloatField(allow_null=True)
    p99_response_time_ms = serializers.FloatField(allow_null=True)


class TimeRangeSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class PageSerializer(serializers.Serializer):
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    total_items = serializers.IntegerField()
    total_pages = serializers.IntegerField()
    has_next = serializers.BooleanField()
    has_previous = serializers.BooleanField()


class ReportMetadataSerializer(serializers.Serializer):
    total_checks = serializers.IntegerField()
    successful_checks = serializers.IntegerField()
    failed_checks = serializers.IntegerField()
    average_response_time_ms = serializers.FloatField(allow_null=True)


class ReportSerializer(serializers.Serializer):
    time_range = TimeRangeSerializer()
    aggregation = serializers.ChoiceField(choices=list(AGGREGATIONS), help_text="The aggregation actually used.")
    data = ReportRowSerializer(many=True)
    pagination = PageSerializer()
    metadata = ReportMetadataSerializer()


CSV_RESPONSE = OpenApiResponse(
    OpenApiTypes.STR, description="format=csv: every row, streamed, as text/csv: a header line, then the rows."
)


def json_or_csv(serializer) -> dict:
    return {(200, "application/json"): serializer, (200, "text/csv"): CSV_RESPONSE}


class ReportView(JsonOnlyNegotiation, APIView):
    """Rows per time bucket x endpoint x agent (or per endpoint, agents merged) x check type: counts,
    success rate, packet loss, status and latency percentiles, read from the rollups. A sub-hour
    aggregation reaching back past the minute rollups' retention is answered hourly (``aggregation``
    says which was used). ``format=csv`` streams every row, without pagination."""

    @extend_schema(
        parameters=[ReportQuerySerializer],
        responses=json_or_csv(ReportSerializer),
        tags=TAGS,
        summary="Aggregated results per time bucket (from the rollups)",
    )
    def get(self, request):
        params = ReportQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        query = ReportQuery(
            **params.window(),
            aggregation=values["aggregation"],
            section_id=values.get("section_id"),
            target=values.get("target", ""),
            statuses=tuple(values.get("status", ())),
            group_by=values["group_by"],
        )
        if values["format"] == "csv":
            _aggregation, rows, _metadata = report(request.user, query)
            return csv_response("report.csv", list(ReportRowSerializer().fields), rows)
        page, size = values["page"], values["page_size"]
        aggregation, rows, total, metadata = report_page(request.user, query, page=page, size=size)
        total_pages = math.ceil(total / size) if total else 0
        body = {
            "time_range": {"start": query.start, "end": query.end},
            "aggregation": aggregation,
            "data": rows,
            "pagination": {
                "page": page,
                "page_size": size,
                "total_items": total,
                "total_pages": total_pages,
                "has_next": page < total_pages,
                "has_previous": page > 1 and total_pages > 0,
            },
            "metadata": metadata,
        }
        # The rows are JSON-ready already (ReportRowSerializer documents them): up to 1,000 of them
        # through serializer fields would cost more than the query.
        answer = ReportSerializer({**body, "data": []}).data
        answer["data"] = rows
        return Response(answer)


# ---------------------------------------------------------------------------------------------
# /result/metrics


class MetricsQuerySerializer(WindowQuerySerializer):
    success = serializers.BooleanField(required=False, allow_null=True, default=None)
    page_size = serializers.IntegerField(min_value=1, max_value=1000, default=100)
    cursor = serializers.CharField(required=False, max_length=500, help_text="next_cursor of the previous page.")


class MetricSerializer(serializers.Serializer):
    type = serializers.CharField()
    target = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["reachable", "unreachable"])
    response_time_ms = serializers.FloatField(allow_null=True)
    packet_loss_percent = serializers.FloatField(allow_null=True)
    status_code = serializers.IntegerField(allow_null=True)
    error_message = serializers.CharField(allow_null=True)
    metadata = serializers.DictField(help_text="The type-specific result as the agent sent it.")


class MetricItemSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    timestamp = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    agent_id = serializers.UUIDField()
    endpoint_id = serializers.UUIDField()
    metric = MetricSerializer()


class CursorPageSerializer(serializers.Serializer):
    page_size = serializers.IntegerField()
    has_next = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


class MetricsSerializer(serializers.Serializer):
    metrics = MetricItemSerializer(many=True)
    pagination = CursorPageSerializer()


METRIC_CSV_COLUMNS = [
    "id",
    "timestamp",
    "received_at",
    "agent_id",
    "endpoint_id",
    "type",
    "target",
    "status",
    "response_time_ms",
    "packet_loss_percent",
    "status_code",
    "error_message",
]


def metric_item(result, targets: dict) -> dict:
    return {
        "id": result.pk,
        "timestamp": result.checked_at,
        "received_at": result.received_at,
        "agent_id": result.agent_id,
        "endpoint_id": result.endpoint_id,
        "metric": {
            "type": result.check_type,
            "target": targets.get(result.endpoint_id),
            "status": "reachable" if result.success else "unreachable",
            "response_time_ms": result.latency_ms,
            "packet_loss_percent": packet_loss_percent(result),
            "status_code": result.status_code,
            "error_message": error_message(result),
            "metadata": result_as_sent(result),
        },
    }


def _targets(results, user) -> dict:
    """The addresses of the results' endpoints the user may see: an id can also name an endpoint
    of another tenant (results of an agent that moved, an id adopted elsewhere after a delete)."""
    ids = {result.endpoint_id for result in results}
    return {
        endpoint.pk: f"{endpoint.address}:{endpoint.port}" if endpoint.port else endpoint.address
        for endpoint in Endpoint.objects.visible_to(user).filter(pk__in=ids).only("id", "address", "port")
    }


class MetricsView(JsonOnlyNegotiation, APIView):
    """Raw results ordered by (timestamp, id), keyset-paginated: pass the previous page's
    ``next_cursor`` (null on the last page). ``format=csv`` streams every row from the cursor on."""

    @extend_schema(
        parameters=[MetricsQuerySerializer],
        responses=json_or_csv(MetricsSerializer),
        tags=TAGS,
        summary="Raw results, keyset-paginated (export and drill-down)",
    )
    def get(self, request):
        params = MetricsQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        query = RawQuery(**params.window(), success=values.get("success"))
        results = raw_results(request.user, query, after=values.get("cursor"))
        if values["format"] == "csv":
            return csv_response("metrics.csv", METRIC_CSV_COLUMNS, _flat_metrics(results, request.user))
        page, next_cursor = page_of(results, values["page_size"])
        targets = _targets(page, request.user)
        body = {
            "metrics": [metric_item(result, targets) for result in page],
            "pagination": {"page_size": values["page_size"], "has_next": bool(next_cursor), "next_cursor": next_cursor},
        }
        return Response(MetricsSerializer(body).data)


def _flat_metrics(results, user):
    """Every row of the query for CSV, read in chunks."""
    chunk = []
    for result in results.iterator(chunk_size=2000):
        chunk.append(result)
        if len(chunk) == 2000:
            yield from _flatten(chunk, user)
            chunk = []
    yield from _flatten(chunk, user)


def _flatten(chunk, user):
    targets = _targets(chunk, user)
    for result in chunk:
        item = metric_item(result, targets)
        yield {**{key: item[key] for key in METRIC_CSV_COLUMNS[:5]}, **item["metric"]}


# ---------------------------------------------------------------------------------------------
# /result/summary


class SummaryQuerySerializer(QuerySerializer):
    time_range = serializers.ChoiceField(choices=list(TIME_RANGES), default="24h")
    section_id = serializers.UUIDField(required=False)


class AgentSummarySerializer(serializers.Serializer):
    agent_id = serializers.UUIDField()
    hostname = serializers.CharField()
    status = serializers.CharField()
    checks_performed = serializers.IntegerField()
    success_rate_percent = serializers.FloatField(allow_null=True)


class SummarySerializer(serializers.Serializer):
    time_range = serializers.CharField()
    total_agents = serializers.IntegerField()
    active_agents = serializers.IntegerField()
    inactive_agents = serializers.IntegerField()
    total_targets = serializers.IntegerField()
    reachable_targets = serializers.IntegerField()
    unreachable_targets = serializers.IntegerField()
    degraded_targets = serializers.IntegerField()
    unknown_targets = serializers.IntegerField(help_text="No results in the last 15 minutes.")
    total_checks = serializers.IntegerField()
    successful_checks = serializers.IntegerField()
    failed_checks = serializers.IntegerField()
    average_response_time_ms = serializers.FloatField(allow_null=True)
    active_alerts = serializers.IntegerField()
    by_agent = AgentSummarySerializer(many=True)


class SummaryView(JsonOnlyNegotiation, APIView):
    """The fleet: agents online and not, targets by their merged state over the last 15 minutes
    (unknown without results), and the checks of the time range, in all and per agent."""

    @extend_schema(parameters=[SummaryQuerySerializer], responses=SummarySerializer, tags=TAGS, summary="The fleet")
    def get(self, request):
        params = SummaryQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        body = summary(request.user, **params.validated_data)
        return Response(SummarySerializer(body).data)


# ---------------------------------------------------------------------------------------------


def csv_response(filename: str, columns: list[str], rows) -> StreamingHttpResponse:
    """Every row, streamed: a header line, then one line per row, None as an empty cell."""

    def lines():
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _cell(row.get(key)) for key in columns})
            if buffer.tell() > 65536:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _cell(value):
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    return value
