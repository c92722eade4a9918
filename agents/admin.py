"""Admin for claimed agents (status, tags restricted to the section, overrides)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from agents.models import Agent, AgentRegistration, AgentStatus
from agents.overrides import overrides_validate
from agents.services.keys import agent_key_rotate, agent_revoke
from agents.services.management import agent_delete, agent_update
from endpoints.models import Tag, TagScope
from smotra.admin import changed_data, section_cell, short_datetime, time_ago, titled, truncated
from smotra.errors import DomainError
from tenants.admin_scoping import TenantScopedAdminMixin, role_allows
from tenants.models import Role


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return AgentStatus.choices

    def queryset(self, request, queryset):
        return queryset.with_status(self.value()) if self.value() in AgentStatus.values else queryset


AGENT_TAG_SCOPES = [TagScope.AGENT, TagScope.GLOBAL]  # endpoint tags belong to endpoints


def status_badge(agent: Agent, now=None) -> str:
    """The agent's status as a coloured badge whose text says it all (colour is only a help):
    ``online · 12 s ago``, ``offline · 3 h ago``, ``never seen``, ``revoked``."""
    now = now or timezone.now()
    status = agent.status(now=now)
    text = str(AgentStatus(status).label).lower()
    if status in (AgentStatus.ONLINE, AgentStatus.OFFLINE):
        text = f"{text} · {time_ago(agent.last_seen_at, now)}"
    moment = agent.revoked_at if status == AgentStatus.REVOKED else agent.last_seen_at
    title = f"{'revoked' if status == AgentStatus.REVOKED else 'last seen'} {short_datetime(moment)}"
    return format_html(
        '<span class="agent-status agent-status-{}" title="{}">{}</span>',
        status.replace("_", "-"),
        title if moment else "not heard from since the claim",
        text,
    )


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
    # Narrow enough for a 1,280 px screen beside the filters; the rest is on the agent's page.
    list_display = ["agent_name", "status_column", "section_name", "short_hostname", "version"]
    list_filter = [StatusFilter, "section__tenant", "section", "tags"]
    search_fields = ["name", "hostname", "id"]
    list_select_related = ["section__tenant"]
    filter_horizontal = ["tags"]
    fieldsets = [
        (None, {"fields": ["name", "status_column", "section", "tags"]}),
        (
            "Agent",
            {"fields": ["id", "hostname", "agent_version", "ip_addresses", "self_endpoint", "configuration_version"]},
        ),
        (
            "Activity and key",
            {
                "fields": [
                    "last_seen_at",
                    "last_result_at",
                    "claimed_at",
                    "claimed_by",
                    "api_key_prefix",
                    "key_delivery",
                    "revoked_at",
                ]
            },
        ),
        ("Overrides", {"fields": ["monitoring_overrides", "server_overrides", "storage_overrides"]}),
    ]
    readonly_fields = [
        "id",
        "status_column",
        "hostname",
        "agent_version",
        "ip_addresses",
        "configuration_version",
        "api_key_prefix",
        "claimed_at",
        "claimed_by",
        "last_seen_at",
        "last_result_at",
        "revoked_at",
        "self_endpoint",
        "key_delivery",
    ]

    class Media:
        css = {"all": ["agents/admin.css"]}

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
                self.log_change(request, agent, "Revoked the API key.")
                self.message_user(request, f"{agent.name}: key revoked.", messages.SUCCESS)

    @admin.action(description="Rotate the API keys of the selected agents (shown once)", permissions=["key"])
    def rotate_keys(self, request, queryset):
        keys = []
        for agent in queryset:
            try:
                keys.append((agent, agent_key_rotate(actor=self.actor(request), agent=agent)))
            except DomainError as exc:
                self.message_user(request, f"{agent.name}: {exc.message}", messages.ERROR)
            else:
                self.log_change(request, agent, "Rotated the API key.")
        if not keys:
            return None
        # Rendered straight away, never stored in a message cookie or the session.
        context = {**self.admin_site.each_context(request), "keys": keys, "title": "New API keys"}
        return TemplateResponse(request, "admin/agents/agent/new_keys.html", context)

    def has_delete_permission(self, request, obj=None):
        return self._has_role(request, obj, Role.ADMIN)

    @admin.display(description="Config version")
    def configuration_version(self, agent) -> int:
        """The version agents see (ETag): the agent's own counter plus its section's."""
        return agent.document_version

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

    @admin.display(description="Name", ordering="name")
    def agent_name(self, agent):
        """On one line (a name broken at each hyphen is hard to read), cut if long."""
        return format_html('<span class="nowrap">{}</span>', truncated(agent.name, 24))

    @admin.display(description="Status", ordering="last_seen_at")
    def status_column(self, agent) -> str:
        return status_badge(agent)

    @admin.display(description="Section", ordering="section__name")
    def section_name(self, agent):
        return section_cell(agent.section)

    @admin.display(description="Host", ordering="hostname")
    def short_hostname(self, agent):
        """The host's own name (``hostname -s``), the fully qualified one as a tooltip."""
        if not agent.hostname:
            return "-"
        return titled(truncated(agent.hostname.split(".")[0], 24), agent.hostname)

    @admin.display(description="Version", ordering="agent_version")
    def version(self, agent) -> str:
        return agent.agent_version or "-"

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None and "tags" in form.base_fields:  # absent when read-only (viewers)
            form.base_fields["tags"].queryset = Tag.objects.filter(section=obj.section, scope__in=AGENT_TAG_SCOPES)
        return form

    def service_update(self, request, obj, form):
        data = changed_data(form)
        if "tags" in data:
            data["tag_ids"] = [tag.pk for tag in data.pop("tags")]
        return agent_update(actor=self.actor(request), agent=Agent.objects.get(pk=obj.pk), **data)

    def service_delete(self, request, obj):
        agent_delete(actor=self.actor(request), agent=obj)


from agents import admin_onboarding  # noqa: E402, F401 - registers the pending agents page
