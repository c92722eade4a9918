"""Admin for pending registrations: the "Pending agents" page and the claim form (contract §5)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from agents.models import Agent, AgentRegistration, RegistrationState
from agents.services.onboarding import agent_claim, registration_discard
from smotra.admin import (
    DeclaredFiltersOnlyMixin,
    domain_error_to_form,
    short_datetime,
    short_duration,
    short_id,
    time_ago,
    titled,
)
from smotra.errors import DomainError
from tenants.admin_scoping import role_allows
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


class SectionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, section) -> str:
        return f"{section} (monitors all its endpoints)" if section.monitor_all_endpoints else str(section)


NO_SECTION_HELP = (
    "You have no section to claim into yet. A superuser creates one: manage.py create_tenant NAME, then "
    "manage.py create_section TENANT NAME --monitor-all (its agents monitor every endpoint in it), or "
    "Tenancy → Sections → Add in this admin."
)
SECTION_HELP = (
    "A section marked 'monitors all its endpoints' needs no tags or topologies: the agent checks "
    "every enabled endpoint there. Other sections follow their topologies."
)


class ClaimForm(forms.Form):
    claim_token = forms.CharField(
        max_length=256, strip=False, widget=forms.PasswordInput(render_value=False), help_text="Printed by the agent."
    )
    section = SectionChoiceField(queryset=Section.objects.none(), help_text=SECTION_HELP)
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the agent's hostname.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        sections = Section.objects.filter(tenant__in=tenants_with_role(user, Role.OPERATOR)).select_related("tenant")
        self.fields["section"].queryset = sections
        if not sections.exists():
            self.fields["section"].help_text = NO_SECTION_HELP


class ClaimByIdForm(forms.Form):
    agent_id = forms.UUIDField(label="Agent id", help_text="Printed in the agent's log, and part of its claim URL.")


REGISTRATION_FIELDS = [
    "agent_id",
    "hostname",
    "agent_version",
    "ip_addresses",
    "source_address",
    "state",
    "registered_at",
    "expires_at",
    "poll_count",
    "last_polled_at",
    "failed_claim_attempts",
    "claimed_at",
    "claimed_by",
    "delivered_at",
    "delivered_to",
    "refused_deliveries",
    "last_refused_at",
]


@admin.register(AgentRegistration)
class AgentRegistrationAdmin(DeclaredFiltersOnlyMixin, admin.ModelAdmin):
    """A pending registration is a capability held by whoever installed the agent (contract §3):
    its id is in the agent's log and claim URL. So tenant members cannot list or search pending
    registrations; they reach one through its claim page (the claim URL, or the id typed into
    "Claim an agent"). Superusers see all. Once claimed, a registration describes an agent of one
    tenant and only that tenant sees it. The claim token hash and the undelivered key are never
    shown, and nothing but the declared filters may be filtered on."""

    # Five narrow columns fit beside the filters at 1,280 px; every field is on the registration's page.
    list_display = ["hostname", "short_agent_id", "registered", "expiry", "claim_link"]
    list_filter = [ActiveFilter, "state"]
    search_fields = ["agent_id", "hostname"]
    ordering = ["-registered_at"]
    fields = REGISTRATION_FIELDS
    readonly_fields = REGISTRATION_FIELDS
    change_list_template = "admin/agents/agentregistration/change_list.html"
    actions = ["discard_selected"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).defer("pending_api_key", "claim_token_hash")
        if request.user.is_superuser:
            return queryset
        claimed_here = Agent.objects.visible_to(request.user).values("pk")
        return queryset.exclude(state=RegistrationState.PENDING).filter(agent_id__in=claimed_here)

    @admin.display(description="Agent id", ordering="agent_id")
    def short_agent_id(self, registration):
        return short_id(registration.agent_id)

    @admin.display(description="Registered", ordering="registered_at")
    def registered(self, registration):
        return titled(time_ago(registration.registered_at), short_datetime(registration.registered_at))

    @admin.display(description="Expires", ordering="expires_at")
    def expiry(self, registration):
        if registration.state != RegistrationState.PENDING:
            return "-"
        now = timezone.now()
        left = int((registration.expires_at - now).total_seconds())
        text = f"expired {time_ago(registration.expires_at, now)}" if left <= 0 else f"in {short_duration(left)}"
        return titled(text, short_datetime(registration.expires_at))

    @admin.display(description="Claim", ordering="state")
    def claim_link(self, registration):
        if registration.state != RegistrationState.PENDING:
            return registration.get_state_display()
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
        return False  # discarding goes through the service (the action below, the claim page)

    def has_discard_permission(self, request):
        return request.user.is_superuser

    @admin.action(description="Discard the selected pending registrations", permissions=["discard"])
    def discard_selected(self, request, queryset):
        for registration in queryset:
            try:
                registration_discard(actor=Actor.from_request(request), agent_id=registration.pk)
            except DomainError as exc:
                self.message_user(request, f"{registration.hostname}: {exc.message}", messages.ERROR)
            else:
                self.log_deletions(request, [registration])
                self.message_user(request, f"{registration.hostname}: registration discarded.", messages.SUCCESS)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<uuid:agent_id>/claim/", wrap(self.claim_view), name="agents_agentregistration_claim"),
            path("claim/", wrap(self.claim_by_id_view), name="agents_agentregistration_claim_by_id"),
            *super().get_urls(),
        ]

    def claim_by_id_view(self, request):
        """ "Claim an agent": the id the operator was given leads to its claim page."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = ClaimByIdForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            return redirect("admin:agents_agentregistration_claim", form.cleaned_data["agent_id"])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": "Claim an agent",
        }
        return TemplateResponse(request, "admin/agents/agentregistration/claim_by_id.html", context)

    def _claimable(self, request, agent_id) -> AgentRegistration | None:
        """The registration behind a claim page: any pending one (knowing its id is the point),
        a claimed one only for its own tenant; the same answer for all else, revealing nothing."""
        registration = AgentRegistration.objects.defer("pending_api_key").filter(pk=agent_id).first()
        if registration is None or registration.state == RegistrationState.PENDING:
            return registration
        return self.get_queryset(request).filter(pk=agent_id).first()

    def claim_view(self, request, agent_id):
        if not self.has_view_permission(request):
            raise PermissionDenied  # viewers may not claim
        registration = self._claimable(request, agent_id)
        if registration is None:
            messages.error(request, "No registration for this agent (it may have been purged); it must register again.")
            return redirect("admin:agents_agentregistration_claim_by_id")
        form = ClaimForm(request.POST or None, user=request.user)
        if request.method == "POST" and "_discard" in request.POST:
            return self._discard_from_claim_page(request, registration, form)
        if request.method == "POST" and form.is_valid():
            try:
                agent = agent_claim(actor=Actor.from_request(request), agent_id=agent_id, **form.cleaned_data)
            except DomainError as exc:
                domain_error_to_form(form, exc)
            else:
                self.log_addition(request, agent, f"Claimed into {agent.section}.")
                messages.success(
                    request, f"Agent {agent.name} claimed. Its API key will be delivered on its next poll."
                )
                return redirect("admin:agents_agent_change", agent.pk)
        return self._claim_page(request, registration, form)

    def _discard_from_claim_page(self, request, registration, form):
        try:
            registration_discard(
                actor=Actor.from_request(request),
                agent_id=registration.pk,
                claim_token=request.POST.get("claim_token", ""),
            )
        except DomainError as exc:
            domain_error_to_form(form, exc)
            return self._claim_page(request, registration, form)
        self.log_deletions(request, [registration])
        messages.success(request, f"The registration of {registration.hostname} was discarded.")
        return redirect("admin:agents_agentregistration_claim_by_id")

    def _claim_page(self, request, registration, form):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "registration": registration,
            "form": form,
            "title": f"Claim {registration.hostname}",
        }
        return TemplateResponse(request, "admin/agents/agentregistration/claim.html", context)
