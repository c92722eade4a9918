"""Admin for pending registrations: the "Pending agents" page and the claim form (contract §5)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from agents.models import Agent, AgentRegistration, RegistrationState
from agents.services.onboarding import agent_claim
from smotra.admin import domain_error_to_form, role_allows
from smotra.errors import DomainError
from tenants.models import Role, Section
from tenants.services import Actor, tenants_with_role


class ActiveFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("expired", "Expired")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(expires_at__gt=now)
        if self.value() == "expired":
            return queryset.filter(expires_at__lte=now)
        return queryset


class ClaimForm(forms.Form):
    claim_token = forms.CharField(
        max_length=256, strip=False, widget=forms.PasswordInput(render_value=False), help_text="Printed by the agent."
    )
    section = forms.ModelChoiceField(queryset=Section.objects.none())
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the agent's hostname.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["section"].queryset = Section.objects.filter(
            tenant__in=tenants_with_role(user, Role.OPERATOR)
        ).select_related("tenant")


@admin.register(AgentRegistration)
class AgentRegistrationAdmin(admin.ModelAdmin):
    """Registrations are not tenant-owned until claimed: operators of any tenant see them, and the
    claim token (known only to whoever installed the agent) is what proves the right to claim."""

    list_display = [
        "agent_id",
        "hostname",
        "addresses",
        "agent_version",
        "state",
        "registered_at",
        "expires_at",
        "poll_count",
        "last_polled_at",
        "claim_link",
    ]
    list_filter = [ActiveFilter, "state"]
    search_fields = ["agent_id", "hostname"]
    ordering = ["-registered_at"]
    readonly_fields = [field.name for field in AgentRegistration._meta.fields if field.name != "pending_api_key"]
    exclude = ["pending_api_key", "claim_token_hash"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).defer("pending_api_key")
        if request.user.is_superuser:
            return queryset
        # Once claimed, a registration describes an agent of one tenant: only that tenant sees it.
        claimed_here = Agent.objects.visible_to(request.user).values("pk")
        return queryset.filter(Q(state=RegistrationState.PENDING) | Q(agent_id__in=claimed_here))

    @admin.display(description="IP addresses")
    def addresses(self, registration) -> str:
        return ", ".join(entry.get("ip", "") for entry in registration.ip_addresses or [])

    @admin.display(description="")
    def claim_link(self, registration):
        if registration.state != RegistrationState.PENDING:
            return "claimed"
        url = reverse("admin:agents_agentregistration_claim", args=[registration.pk])
        return format_html('<a class="button" href="{}">Claim</a>', url)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff and role_allows(request.user, None, Role.OPERATOR)

    def has_view_permission(self, request, obj=None):
        return role_allows(request.user, None, Role.OPERATOR)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_urls(self):
        claim = path(
            "<uuid:agent_id>/claim/",
            self.admin_site.admin_view(self.claim_view),
            name="agents_agentregistration_claim",
        )
        return [claim, *super().get_urls()]

    def claim_view(self, request, agent_id):
        if not self.has_view_permission(request):
            raise PermissionDenied  # viewers may not claim
        registration = self.get_queryset(request).filter(pk=agent_id).first()
        if registration is None:
            messages.error(request, "No registration for this agent (it may have been purged); it must register again.")
            return redirect("admin:agents_agentregistration_changelist")
        form = ClaimForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            try:
                agent = agent_claim(actor=Actor.from_request(request), agent_id=agent_id, **form.cleaned_data)
            except DomainError as exc:
                domain_error_to_form(form, exc)
            else:
                messages.success(
                    request, f"Agent {agent.name} claimed. Its API key will be delivered on its next poll."
                )
                return redirect("admin:agents_agent_change", agent.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "registration": registration,
            "form": form,
            "title": f"Claim {registration.hostname}",
        }
        return TemplateResponse(request, "admin/agents/agentregistration/claim.html", context)
