"""Admin for what agents report: unknown endpoint ids (with adoption), read-only results, the
overview page, and the charts on the endpoint and agent pages (results/charts.py draws them)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from agents.admin import AgentAdmin
from agents.models import Agent
from endpoints.admin import EndpointAdmin
from endpoints.models import Endpoint
from results import charts
from results.models import CheckResult, UnknownEndpoint
from results.selectors import agent_overview
from results.selectors.charts import (
    RANGES,
    agent_figures,
    chart_window,
    check_types_of,
    figures,
    fleet_overview,
    last_results,
    latency_series,
    pick_check_type,
    vitals_series,
    window_buckets,
)
from results.services import unknown_endpoint_adopt
from smotra import hooks
from smotra.admin import datetime_cell, short_id, truncated
from smotra.errors import DomainError
from tenants.admin_scoping import TenantScopedAdminMixin


class _ReadOnly:
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UnknownEndpoint)
class UnknownEndpointAdmin(_ReadOnly, TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["unknown_id", "agent", "count", "last_seen", "sample"]
    list_filter = ["agent__section__tenant", "agent__section", "agent"]
    search_fields = ["endpoint_id", "sample_address", "agent__name"]
    list_select_related = ["agent__section"]
    tenant_id_attr = "agent.section.tenant_id"
    actions = ["adopt"]

    @admin.display(description="Endpoint id", ordering="endpoint_id")
    def unknown_id(self, unknown):
        return short_id(unknown.endpoint_id)

    @admin.display(description="Last seen", ordering="last_seen_at")
    def last_seen(self, unknown):
        return datetime_cell(unknown.last_seen_at)

    @admin.display(description="Sample address", ordering="sample_address")
    def sample(self, unknown):
        return truncated(unknown.sample_address, 32) or "-"

    def has_delete_permission(self, request, obj=None):
        return self._has_role(request, obj, self.write_role)

    def service_delete(self, request, obj):
        obj.delete()  # forgetting an unknown id changes no configuration

    @admin.action(description="Create endpoints with these ids in the agent's section")
    def adopt(self, request, queryset):
        for unknown in queryset.select_related("agent__section"):
            try:
                endpoint = unknown_endpoint_adopt(actor=self.actor(request), unknown=unknown)
            except DomainError as exc:
                self.message_user(request, f"{unknown.endpoint_id}: {exc.message}", messages.ERROR)
            else:
                self.log_addition(request, endpoint, f"Adopted from the results of {unknown.agent}.")
                self.message_user(request, f"Created endpoint {endpoint} ({endpoint.pk}).", messages.SUCCESS)


def _endpoint_column(name: str) -> Subquery:
    """One column of the result's endpoint, or NULL when it is gone. Results keep their endpoint id
    without a database constraint: a join (``select_related``) would drop the rows of deleted ones."""
    # Only an endpoint of the result's own tenant: an id may also name another tenant's endpoint.
    same_tenant = Endpoint.objects.filter(
        pk=OuterRef("endpoint_id"), section__tenant=OuterRef("agent__section__tenant")
    )
    return Subquery(same_tenant.values(name)[:1])


@admin.register(CheckResult)
class CheckResultAdmin(_ReadOnly, TenantScopedAdminMixin, admin.ModelAdmin):
    # Short headings: a heading does not wrap, so it sets its column's least width.
    list_display = ["checked", "agent_name", "endpoint_address", "check_label", "ok", "latency", "http_status"]
    list_filter = ["check_type", "success", "agent__section__tenant", "agent", "endpoint"]
    search_fields = ["endpoint__address", "agent__name", "endpoint__id"]
    date_hierarchy = "checked_at"
    list_select_related = ["agent"]
    show_full_result_count = False  # counting a large results table on every page view is slow
    tenant_id_attr = "agent.section.tenant_id"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset.annotate(
            address_of_endpoint=_endpoint_column("address"), port_of_endpoint=_endpoint_column("port")
        )

    @admin.display(description="Time", ordering="checked_at")
    def checked(self, result):
        return datetime_cell(result.checked_at)

    @admin.display(description="Agent", ordering="agent__name")
    def agent_name(self, result):
        """On one line (a name broken at each hyphen is hard to read), cut if long."""
        return format_html('<span class="nowrap">{}</span>', truncated(result.agent.name, 20))

    @admin.display(description="Check", ordering="check_type")
    def check_label(self, result) -> str:
        return result.get_check_type_display()

    @admin.display(description="OK", boolean=True, ordering="success")
    def ok(self, result) -> bool:
        return result.success

    @admin.display(description="HTTP", ordering="status_code")
    def http_status(self, result) -> str:
        return "-" if result.status_code is None else str(result.status_code)

    @admin.display(description="Endpoint")
    def endpoint_address(self, result):
        address = getattr(result, "address_of_endpoint", None)
        if address is None:  # deleted since: the id the agent reported, in short
            return short_id(result.endpoint_id, "endpoint deleted")
        port = result.port_of_endpoint
        return truncated(address, 28, f":{port}" if port else "", wrap=True)

    @admin.display(description="Latency", ordering="latency_ms")
    def latency(self, result):
        if result.latency_ms is None:
            return "-"
        return format_html('<span class="nowrap">{} ms</span>', f"{result.latency_ms:.2f}")

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        overview = path("overview/", self.admin_site.admin_view(self.overview_view), name="results_overview")
        return [overview, *super().get_urls()]

    def overview_view(self, request):
        """The state of the user's fleet (linked first on the admin index); viewers may see it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Overview",
            "overview": fleet_overview(request.user),
            "open_incidents": hooks.overview_incidents(request.user),
        }
        return TemplateResponse(request, "admin/results/overview.html", context)


# ---------------------------------------------------------------------------------------------
# Charts on the endpoint and agent pages


class ChartsMedia:
    css = {"all": ["results/charts.css"]}
    js = ["results/charts.js"]


def _links(request, name: str, values) -> list[dict]:
    """``?name=value`` links that keep the page's other parameters."""
    return [
        {"label": label, "url": "?" + urlencode({**request.GET.dict(), name: value}), "current": False}
        for value, label in values
    ]


def _range_links(request, window) -> list[dict]:
    return [
        link | {"current": link["label"] == window.key}
        for link in _links(request, "range", [(key, key) for key in RANGES])
    ]


def endpoint_charts(request, endpoint) -> dict:
    """The endpoint page's chart: one series per agent of the chosen check type, and the table."""
    window = chart_window(request.GET.get("range"))
    found = latency_series(request.user, window, endpoint_ids=[endpoint.pk])
    check_type = pick_check_type(found, request.GET.get("check"))
    shown = [one for one in found if one.check_type == check_type]
    series = [charts.ChartSeries(str(one.agent_id), one.name, charts.color(i), one.rows) for i, one in enumerate(shown)]
    totals = agent_figures(request.user, window, endpoint.pk, check_type) if check_type else {}
    last = last_results(request.user, endpoint.pk, [one.agent_id for one in shown])
    chart_id = f"chart-{endpoint.pk}"
    checks = _links(request, "check", [(name, name) for name in check_types_of(found)])
    return {
        "window": window,
        "ranges": _range_links(request, window),
        "check_type": check_type,
        "check_links": [link | {"current": link["label"] == check_type} for link in checks],
        "svg": charts.latency_chart(chart_id, start=window.start, span=window.span, step=window.step, series=series),
        "legend": charts.legend(chart_id, series),
        "agents": [
            {
                "series": drawn,
                "swatch": charts.swatch(drawn.color),
                "figures": totals.get(one.agent_id, {}),
                "last": last.get(one.agent_id),
            }
            for drawn, one in zip(series, shown, strict=True)
        ],
    }


class EndpointWithChartsAdmin(EndpointAdmin):
    """The endpoint page with its latency chart per agent and a table of their figures (registered
    here over the endpoints app's admin, which knows nothing of results: layering)."""

    change_form_template = "admin/results/endpoint/change_form.html"
    Media = ChartsMedia  # the endpoints app's media (none) and the charts'

    def change_view(self, request, object_id, form_url="", extra_context=None):
        endpoint = self.get_object(request, object_id)
        extra = {"charts": endpoint_charts(request, endpoint)} if endpoint is not None else {}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})


def _small_multiple(request, window, endpoint, found: list, totals: dict, monitored: bool) -> dict:
    check_type = pick_check_type(found, request.GET.get("check"))
    shown = [one for one in found if one.check_type == check_type]
    series = [charts.ChartSeries(str(one.agent_id), one.name, charts.color(0), one.rows) for one in shown]
    svg = charts.latency_chart(
        f"chart-{endpoint.pk}",
        start=window.start,
        span=window.span,
        step=window.step,
        series=series,
        width=440,
        plot_height=110,
        label=f"Latency to {endpoint}",
    )
    return {
        "endpoint": endpoint,
        "check_type": check_type,
        "svg": svg,
        "points": sum(s.points for s in series),
        "figures": totals.get((endpoint.pk, check_type), {}),
        "monitored": monitored,
    }


def agent_charts(request, agent, overview) -> dict:
    """The agent page's small multiples (one chart per endpoint it monitors or has results for in
    the window) and its vitals over the window."""
    window = chart_window(request.GET.get("range"))
    found = latency_series(request.user, window, agent_ids=[agent.pk])
    merged = window_buckets(
        request.user,
        window.query(agent_ids=(agent.pk,)),
        lambda row: (row["endpoint_id"], row["check_type"]),
        now=window.now,
    )
    totals = {key: figures(bucket) for key, bucket in merged.items()}
    endpoints = list(overview.endpoints)
    known = {endpoint.pk for endpoint in endpoints}
    others = {one.endpoint_id for one in found} - known
    endpoints += list(Endpoint.objects.visible_to(request.user).filter(pk__in=others))
    return {
        "window": window,
        "ranges": _range_links(request, window),
        "multiples": [
            _small_multiple(
                request,
                window,
                endpoint,
                [one for one in found if one.endpoint_id == endpoint.pk],
                totals,
                monitored=endpoint.pk in known,
            )
            for endpoint in endpoints
        ],
        "vitals": vitals_charts(request.user, agent, window),
    }


def vitals_charts(user, agent, window) -> dict:
    """CPU (0-100 %) and memory used beside the total (MB), a point per bucket with heartbeats."""
    points = vitals_series(user, agent.pk, window)
    middle = timedelta(seconds=window.step / 2)

    def column(name: str) -> list:
        return [(point["timestamp"] + middle, point[name]) for point in points]

    common = {"start": window.start, "span": window.span, "step": window.step}
    cpu = charts.Line("cpu", "CPU", charts.color(0), column("cpu_usage_percent"))
    used = charts.Line("memory-used", "Memory used", charts.color(1), column("memory_usage_mb"))
    total = charts.Line("memory-total", "Memory total", charts.color(6), column("memory_total_mb"), True, False)
    highest = max((value for _m, value in total.points + used.points if value is not None), default=None)
    return {
        "heartbeats": sum(point["heartbeats"] for point in points),
        "points": len(points),
        "cpu": charts.line_chart(f"cpu-{agent.pk}", lines=[cpu], unit="%", top_value=100, **common),
        "memory": charts.line_chart(f"memory-{agent.pk}", lines=[used, total], unit="MB", top_value=highest, **common),
        "colors": {"cpu": cpu.color, "used": used.color, "total": total.color},
    }


class AgentWithReportsAdmin(AgentAdmin):
    """The agent page with what the agent reported: latest vitals and status, vitals over time,
    the monitored endpoints with their last result and 24-hour ratio, a latency chart per endpoint,
    unknown endpoint ids. The results app
    registers it over the agents app's own admin, which knows nothing of results (layering)."""

    change_form_template = "admin/results/agent/change_form.html"

    Media = ChartsMedia  # added to the agents app's media (extend)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        agent = self.get_object(request, object_id)
        extra = {}
        if agent is not None:
            overview = agent_overview(agent)
            extra = {"overview": overview, "charts": agent_charts(request, agent, overview)}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})


admin.site.unregister(Agent)
admin.site.register(Agent, AgentWithReportsAdmin)
admin.site.unregister(Endpoint)
admin.site.register(Endpoint, EndpointWithChartsAdmin)
# Django's own admin/index.html is found before any app's copy (django.contrib.admin is listed
# first), so the index that links the overview first is named here.
admin.site.index_template = "admin/results/index.html"
