"""Admin for claimed agents (status, tags restricted to the section, overrides)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from agents.models import Agent, AgentRegistration, AgentStatus
from agents.overrides import overrides_validate
from agents.services.keys import agent_key_rotate, agent_revoke
from agents.services.management import agent_delete, agent_update
from endpoints.models import Tag
from results.selectors import agent_overview
from smotra.admin import TenantScopedAdminMixin, changed_data, role_allows
from smotra.errors import DomainError
from tenants.models import Role


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return AgentStatus.choices

    def queryset(self, request, queryset):
        return queryset.with_status(self.value()) if self.value() in AgentStatus.values else queryset


class AgentForm(forms.ModelForm):
    class Meta:
        model = Agent
        fields = ["name", "section", "tags", "monitoring_overrides", "server_overrides", "storage_overrides"]

    def clean(self):
        data = super().clean()
        section = data.get("section") or self.instance.section
        if any(tag.section_id != section.pk for tag in data.get("tags") or []):
            self.add_error("tags", "Pick tags of the agent's section only.")
        for block in ("monitoring", "server", "storage"):
            field = f"{block}_overrides"
            if field in data and field in self.changed_data:
                try:
                    data[field] = overrides_validate(block, data[field] or {})
                except DomainError as exc:
                    self.add_error(field, exc.message)
        return data


@admin.register(Agent)
class AgentAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    form = AgentForm
    list_display = ["name", "status_column", "section", "agent_version", "config_version", "last_seen_at", "hostname"]
    list_filter = [StatusFilter, "section__tenant", "section", "tags"]
    search_fields = ["name", "hostname", "id"]
    list_select_related = ["section__tenant"]
    filter_horizontal = ["tags"]
    readonly_fields = [
        "id",
        "hostname",
        "agent_version",
        "ip_addresses",
        "config_version",
        "api_key_prefix",
        "claimed_at",
        "claimed_by",
        "last_seen_at",
        "last_result_at",
        "revoked_at",
        "self_endpoint",
        "key_delivery",
    ]

    actions = ["revoke_keys", "rotate_keys"]

    def has_add_permission(self, request):
        return False  # agents come from registration and a claim, never from a blank form

    def has_key_permission(self, request):
        return role_allows(request.user, None, Role.ADMIN)

    @admin.action(description="Revoke the API keys of the selected agents", permissions=["key"])
    def revoke_keys(self, request, queryset):
        for agent in queryset:
            try:
                agent_revoke(actor=self.actor(request), agent=agent)
            except DomainError as exc:
                self.message_user(request, f"{agent.name}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{agent.name}: key revoked.", messages.SUCCESS)

    @admin.action(description="Rotate the API keys of the selected agents (shown once)", permissions=["key"])
    def rotate_keys(self, request, queryset):
        keys = []
        for agent in queryset:
            try:
                keys.append((agent, agent_key_rotate(actor=self.actor(request), agent=agent)))
            except DomainError as exc:
                self.message_user(request, f"{agent.name}: {exc.message}", messages.ERROR)
        if not keys:
            return None
        # Rendered straight away, never stored in a message cookie or the session.
        context = {**self.admin_site.each_context(request), "keys": keys, "title": "New API keys"}
        return TemplateResponse(request, "admin/agents/agent/new_keys.html", context)

    def has_delete_permission(self, request, obj=None):
        return self._has_role(request, obj, Role.ADMIN)

    @admin.display(description="Key delivery")
    def key_delivery(self, agent) -> str:
        """Where and when the agent collected its key (contract §4: only from its registering address)."""
        registration = AgentRegistration.objects.filter(pk=agent.pk).only(
            "source_address", "delivered_at", "delivered_to", "refused_deliveries"
        )
        registration = registration.first()
        if registration is None:
            return "-"
        if registration.delivered_at is None:
            text = f"not delivered yet (registered from {registration.source_address or 'an unknown address'})"
        else:
            text = f"delivered {registration.delivered_at:%Y-%m-%d %H:%M:%S} UTC to {registration.delivered_to or '?'}"
        if registration.refused_deliveries:
            text += f"; {registration.refused_deliveries} poll(s) from other addresses refused"
        return text

    @admin.display(description="Status")
    def status_column(self, agent) -> str:
        return AgentStatus(agent.status(now=timezone.now())).label

    def change_view(self, request, object_id, form_url="", extra_context=None):
        agent = self.get_object(request, object_id)
        extra = {"overview": agent_overview(agent)} if agent is not None else {}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None and "tags" in form.base_fields:  # absent when read-only (viewers)
            form.base_fields["tags"].queryset = Tag.objects.filter(section=obj.section)
        return form

    def service_update(self, request, obj, form):
        data = changed_data(form)
        if "tags" in data:
            data["tag_ids"] = [tag.pk for tag in data.pop("tags")]
        return agent_update(actor=self.actor(request), agent=Agent.objects.get(pk=obj.pk), **data)

    def service_delete(self, request, obj):
        agent_delete(actor=self.actor(request), agent=obj)


from agents import admin_onboarding  # noqa: E402, F401 - registers the pending agents page
