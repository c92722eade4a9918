"""Admin for what agents report: unknown endpoint ids (with adoption) and read-only results."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.utils.html import format_html

from agents.admin import AgentAdmin
from agents.models import Agent
from endpoints.models import Endpoint
from results.models import CheckResult, UnknownEndpoint
from results.selectors import agent_overview
from results.services import unknown_endpoint_adopt
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
    return Subquery(Endpoint.objects.filter(pk=OuterRef("endpoint_id")).values(name)[:1])


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


class AgentWithReportsAdmin(AgentAdmin):
    """The agent page with what the agent reported: latest vitals and status, the monitored
    endpoints with their last result and 24-hour ratio, unknown endpoint ids. The results app
    registers it over the agents app's own admin, which knows nothing of results (layering)."""

    change_form_template = "admin/results/agent/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        agent = self.get_object(request, object_id)
        extra = {"overview": agent_overview(agent)} if agent is not None else {}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})


admin.site.unregister(Agent)
admin.site.register(Agent, AgentWithReportsAdmin)
