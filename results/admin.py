"""Admin for what agents report: unknown endpoint ids (with adoption) and read-only results."""

from __future__ import annotations

from django.contrib import admin, messages

from results.models import CheckResult, UnknownEndpoint
from results.services import unknown_endpoint_adopt
from smotra.admin import TenantScopedAdminMixin
from smotra.errors import DomainError


class _ReadOnly:
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UnknownEndpoint)
class UnknownEndpointAdmin(_ReadOnly, TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["endpoint_id", "agent", "count", "first_seen_at", "last_seen_at", "sample_address"]
    list_filter = ["agent__section__tenant", "agent__section", "agent"]
    search_fields = ["endpoint_id", "sample_address", "agent__name"]
    list_select_related = ["agent__section"]
    tenant_id_attr = "agent.section.tenant_id"
    actions = ["adopt"]

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
                self.message_user(request, f"Created endpoint {endpoint} ({endpoint.pk}).", messages.SUCCESS)


@admin.register(CheckResult)
class CheckResultAdmin(_ReadOnly, TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["checked_at", "agent", "endpoint_id", "check_type", "success", "latency_ms", "status_code"]
    list_filter = ["check_type", "success", "agent__section__tenant"]
    search_fields = ["id", "endpoint__id", "agent__name"]
    date_hierarchy = "checked_at"
    list_select_related = ["agent"]
    show_full_result_count = False  # counting a large results table on every page view is slow
    tenant_id_attr = "agent.section.tenant_id"

    def has_delete_permission(self, request, obj=None):
        return False
