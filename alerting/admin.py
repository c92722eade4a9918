"""Admin for alerting: incidents (read, acknowledge), rules (with what they would find now), channels
(secrets write-only, a test send) and maintenance windows; and the open incidents the overview and
the admin index list first (smotra.hooks.overview_incidents).

Every write goes through alerting.services. Forms ask the service before the admin saves (a dry run,
rolled back), so a refusal lands on the field it is about and nothing typed is lost."""

from __future__ import annotations

import re
from functools import wraps
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Case, Count, IntegerField, Value, When
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from agents.models import Agent
from alerting.evaluation import findings, snapshot
from alerting.models import (
    OPEN,
    AlertRule,
    Channel,
    ChannelType,
    Incident,
    IncidentKind,
    IncidentStatus,
    MaintenanceWindow,
    Metric,
    Notification,
    Severity,
)
from alerting.services import channels as channel_services
from alerting.services import rules as rule_services
from alerting.services import windows as window_services
from alerting.services.incidents import incident_acknowledge
from endpoints.models import Endpoint, Tag, TagScope
from results.selectors.reports import METRIC_TYPES
from smotra import hooks
from smotra.admin import changed_data, datetime_cell, short_datetime, short_duration, time_ago, truncated
from smotra.errors import DomainError
from tenants.admin_scoping import TenantScopedAdminMixin
from tenants.models import Role, Section

SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
OVERVIEW_LIMIT = 20  # the overview lists the most severe; the changelist has them all
UNITS = {Metric.STATUS: " checks passed", Metric.UPTIME: " %", Metric.LOSS: " %", Metric.RESPONSE_TIME: " ms"}
UNITS[Metric.AGENT_OFFLINE] = " s"  # silent for
MAINTENANCE_BADGE = SafeString(
    ' <span class="alert-badge maintenance" title="Opened in maintenance">maintenance</span>'
)


# ---------------------------------------------------------------------------------------------
# Shared pieces: badges, values, service dry runs, pickers of the tenant's objects


def severity_badge(severity: str):
    return format_html('<span class="alert-badge severity-{}">{}</span>', severity, Severity(severity).label)


def status_badge(status: str):
    return format_html('<span class="alert-badge status-{}">{}</span>', status, IncidentStatus(status).label)


def value_text(metric: str, value) -> str:
    """A metric's value with its unit: ``12.5 ms``, ``40 %``, ``930 s``, ``0 checks passed``."""
    return "-" if value is None else f"{value:.4g}{UNITS.get(metric, '')}"


class _Rollback(Exception):
    """Ends a dry run: the savepoint it leaves is rolled back."""


def dry_run(form, call, aliases: dict | None = None) -> None:
    """Run a service in a savepoint that is always rolled back; its refusal goes on the form, on the
    field it names (its API path, ``condition.filters.agent_ids[0]``, read as ``agent_ids``)."""
    try:
        with transaction.atomic():
            call()
            raise _Rollback
    except _Rollback:
        pass
    except DomainError as exc:
        name = re.sub(r"\[\d+\]$", "", exc.field or "").rsplit(".", 1)[-1]
        name = (aliases or {}).get(name, name)
        form.add_error(name if name in form.fields else None, exc.message)


class Picker(FilteredSelectMultiple):
    """The admin's two-box picker in a box of its own: SelectFilter2.js puts the boxes first in the
    select's parent, which would otherwise be the row, before the label."""

    def render(self, *args, **kwargs):
        return format_html('<div class="related-widget-wrapper">{}</div>', super().render(*args, **kwargs))


def _picker(label: str) -> forms.ModelMultipleChoiceField:
    return forms.ModelMultipleChoiceField(
        Section.objects.none(),  # the admin sets each picker's queryset to the tenant's objects
        required=False,
        label=label,
        widget=Picker(label, is_stacked=False),
    )


PICKED = {"section_ids": Section, "endpoint_ids": Endpoint, "endpoint_tag_ids": Tag, "agent_ids": Agent}


class ServiceFormAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """An admin of a tenant-owned alerting model whose form asks the service (``form.save_with``)."""

    tenant_id_attr = "tenant_id"

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.actor = self.actor(request)  # a class made for this request: safe to set on it
        return form

    def get_readonly_fields(self, request, obj=None):
        return ["tenant"] if obj is not None else []

    def service_create(self, request, form):
        return form.save_with(self.actor(request))

    def service_update(self, request, obj, form):
        return form.save_with(self.actor(request))


class ServiceForm(forms.ModelForm):
    """Validated by the model, then by a dry run of the service that will save it."""

    actor = None  # set by ServiceFormAdmin.get_form
    field_aliases: dict = {}

    def save_with(self, actor):
        raise NotImplementedError

    def clean(self):
        data = super().clean()
        for name in PICKED.keys() & data.keys():  # before the model sees them: it stores id strings
            data[name] = [str(obj.pk) for obj in data[name]]
        return data

    def _post_clean(self):
        super()._post_clean()  # the model's own checks (constraints) first: the service relies on them
        if not self.errors:
            dry_run(self, lambda: self.save_with(self.actor), self.field_aliases)


class ScopedPickersAdmin(ServiceFormAdmin):
    """Pickers limited to the object's tenant (on a new object: to the tenants the user may write in);
    people who may only read see the picked objects by name (``watched``)."""

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        for name, model in PICKED.items():
            if name in form.base_fields:
                form.base_fields[name].queryset = self._choices(model, request.user, obj)
                form.base_fields[name].help_text = "None picked: all of the tenant's."
        return form

    def _choices(self, model, user, obj):
        queryset = model.objects.for_tenant(obj.tenant) if obj is not None else self._writable(model, user)
        if model is Tag:
            queryset = queryset.filter(scope__in=[TagScope.ENDPOINT, TagScope.GLOBAL])
        return queryset.order_by("address" if model is Endpoint else "name")

    def pickers_or_names(self, request, obj, names: list[str]) -> list[str]:
        return names if self.has_change_permission(request, obj) else ["watched"]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "watched"]

    @admin.display(description="Scope")
    def watched(self, obj) -> str:
        lists = obj.filters if isinstance(obj, AlertRule) else {name: getattr(obj, name, None) for name in PICKED}
        return picked_text(lists or {})


def picked_text(lists: dict) -> str:
    """``Sections: edge; Agents: probe-1, probe-2`` (none picked: everything of the tenant)."""
    parts = []
    for name, model in PICKED.items():
        ids = lists.get(name) or []
        if ids:
            label = "Endpoint tags" if name == "endpoint_tag_ids" else model._meta.verbose_name_plural.capitalize()
            names = _names(model, ids, "address" if model is Endpoint else "name")
            parts.append(f"{label}: {_listed(ids, names)}")
    if lists.get("metric_types"):
        parts.append(f"Check types: {', '.join(lists['metric_types'])}")
    return "; ".join(parts) or "Everything of the tenant."


# ---------------------------------------------------------------------------------------------
# The open incidents the overview and the admin index list first


def overview_incidents(user) -> list[dict]:
    """The open incidents the user may see, most severe first, then unacknowledged, then newest."""
    rank = Case(*(When(severity=s, then=Value(n)) for s, n in SEVERITY_RANK.items()), output_field=IntegerField())
    acknowledged = Case(When(status=IncidentStatus.ACKNOWLEDGED, then=Value(1)), default=Value(0))
    incidents = Incident.objects.visible_to(user).filter(status__in=OPEN)
    incidents = incidents.annotate(rank=rank, acknowledged=acknowledged).order_by("rank", "acknowledged", "-created_at")
    now = timezone.now()
    return [
        {
            "severity": incident.severity,
            "severity_badge": severity_badge(incident.severity),
            "title": incident.title,
            "since": incident.created_at,
            "since_text": time_ago(incident.created_at, now),
            "status": incident.status,
            "status_badge": status_badge(incident.status),
            "in_maintenance": incident.in_maintenance,
            "url": reverse("admin:alerting_incident_change", args=[incident.pk]),
        }
        for incident in incidents[:OVERVIEW_LIMIT]
    ]


def _index_with_open_incidents(index):
    """The admin index (admin/results/index.html) lists the open incidents, as the overview does."""

    @wraps(index)
    def view(request, extra_context=None):
        return index(request, {"open_incidents": hooks.overview_incidents(request.user), **(extra_context or {})})

    return view


admin.site.index = _index_with_open_incidents(admin.site.index)


# ---------------------------------------------------------------------------------------------
# Incidents: made by the evaluator; people read and acknowledge them


def _names(model, ids, attr: str = "name") -> dict[str, str]:
    return {str(pk): name for pk, name in model.objects.filter(pk__in=list(ids)).values_list("pk", attr)}


def _listed(ids, names: dict) -> str:
    return ", ".join(names.get(str(value)) or f"{str(value)[:8]}… (deleted)" for value in ids) or "none"


def _agents_of(incident, name: str) -> list:
    return (incident.failing_agents if name.startswith("failing") else incident.ok_agents) if incident else []


def event_text(data: dict, agents: dict, channels: dict, metric: str) -> str:
    """An event's data for people: agents and channels by name, the value with its unit."""
    data, parts = dict(data or {}), []
    if "event" in data:
        parts.append(f"{data.pop('event')} to {_listed(data.pop('channels', []), channels)}")
    for key, label in (("failing_agents", "failing"), ("ok_agents", "ok")):
        if key in data:
            parts.append(f"{label}: {_listed(data.pop(key), agents)}")
    if "value" in data:
        parts.append(f"value: {value_text(metric, data.pop('value'))}")
    parts += [f"{key}: {value}" for key, value in data.items()]
    return "; ".join(parts)


def notification_rows(notifications) -> list[dict]:
    """Notifications with their delivery attempts (each with what it came to), for a read-only table."""
    return [
        {"notification": n, "attempts": [(attempt, attempt_text(attempt)) for attempt in n.delivery_attempts.all()]}
        for n in notifications
    ]


def attempt_text(attempt) -> str:
    """``HTTP 500, 31 ms``, ``12 ms: Could not send: ...`` (the error unless the status says it)."""
    code = f"HTTP {attempt.status_code}" if attempt.status_code else ""
    text = ", ".join(part for part in (code, f"{attempt.duration_ms:.0f} ms") if part)
    return f"{text}: {attempt.error}" if attempt.error and attempt.error != f"{code}." else text


@admin.register(Incident)
class IncidentAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    tenant_id_attr = "tenant_id"
    # Narrow enough for a 1,280 px screen beside the filters: the kind and what failed are under the
    # title (which names the target or the agent), the acknowledgement and maintenance by the status.
    list_display = ["severity_cell", "incident_title", "status_cell", "created"]
    list_display_links = None  # the title links the incident itself, the line under it stays plain text
    list_filter = ["status", "severity", "kind", "rule", "in_maintenance", "tenant"]
    search_fields = ["title", "target"]
    list_select_related = ["agent", "acknowledged_by", "rule"]
    actions = ["acknowledge_selected"]
    summary = ["kind_and_subject", "description", "failing_agent_names", "ok_agent_names", "value", "opened", "rule"]
    details = ["title", "tenant", "endpoint", "agent", "metric_type", "threshold_value", "current_value"]
    details += ["in_maintenance", "created_at", "acknowledged_at", "acknowledged_by", "resolved_at", "last_notified_at"]
    readonly_fields = [*summary, *details]

    def get_fieldsets(self, request, obj=None):
        """What matters first (the agent lists only where there are some), every field below."""
        shown = [name for name in self.summary if not name.endswith("agent_names") or _agents_of(obj, name)]
        return [(None, {"fields": shown}), ("All fields", {"fields": self.details, "classes": ["collapse"]})]

    def has_add_permission(self, request):
        return False  # the evaluator opens incidents

    def has_change_permission(self, request, obj=None):
        return False  # nothing to edit: acknowledging has its own button and action

    def has_acknowledge_permission(self, request, obj=None):
        return self._has_role(request, obj, Role.OPERATOR)

    # Role-based, because deleting an endpoint, an agent or a rule deletes its incidents and the admin
    # asks this per incident; deleting incidents on their own is for superusers (delete_view, actions).
    def delete_view(self, request, object_id, extra_context=None):
        if not request.user.is_superuser:
            raise PermissionDenied
        return super().delete_view(request, object_id, extra_context)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.is_superuser:
            actions.pop("delete_selected", None)
        return actions

    @admin.display(description="Severity", ordering="severity")
    def severity_cell(self, incident):
        return severity_badge(incident.severity)

    @admin.display(description="Status", ordering="status")
    def status_cell(self, incident):
        """The status, who acknowledged it, and whether it opened in a maintenance window."""
        by = incident.acknowledged_by.get_username() if incident.acknowledged_by_id else ""
        return format_html(
            "{}{}{}",
            status_badge(incident.status),
            format_html('<br><span class="quiet">by {}</span>', truncated(by, 20)) if by else "",
            MAINTENANCE_BADGE if incident.in_maintenance else "",
        )

    @admin.display(description="Incident", ordering="title")
    def incident_title(self, incident):
        """The title (linked) over the kind, what failed unless the title names it, and the rule."""
        url = reverse("admin:alerting_incident_change", args=[incident.pk])
        subject = self.subject(incident)
        kind = incident.get_kind_display() + ("" if subject in incident.title else f": {subject}")
        return format_html(
            '<a href="{}">{}</a><br><span class="quiet">{} · {}</span>',
            url,
            truncated(incident.title, 64),
            truncated(kind, 48, wrap=True),
            truncated(incident.rule.name, 40),
        )

    @admin.display(description="Subject")
    def subject(self, incident) -> str:
        """What failed: the endpoint's target, or the agent."""
        return incident.target or (incident.agent.name if incident.agent_id else "-")

    @admin.display(description="What failed")
    def kind_and_subject(self, incident) -> str:
        return f"{incident.get_kind_display()}: {self.subject(incident)}"

    @admin.display(description="Opened", ordering="created_at")
    def created(self, incident):
        return datetime_cell(incident.created_at)

    @admin.display(description="Opened")
    def opened(self, incident) -> str:
        return f"{short_datetime(incident.created_at)} UTC, {time_ago(incident.created_at)}"

    @admin.display(description="Value")
    def value(self, incident) -> str:
        """The metric's value when last judged, against the threshold where there is one."""
        shown = value_text(incident.metric_type, incident.current_value)
        if incident.metric_type == Metric.STATUS:
            return f"{shown} in the window"
        if incident.metric_type == Metric.AGENT_OFFLINE:
            return f"not heard from for {shown}"
        if incident.threshold_value is None:
            return shown
        return f"{shown} (threshold {value_text(incident.metric_type, incident.threshold_value)})"

    @admin.display(description="Failing agents")
    def failing_agent_names(self, incident) -> str:
        return _listed(incident.failing_agents, _names(Agent, incident.failing_agents))

    @admin.display(description="Agents that see it fine")
    def ok_agent_names(self, incident) -> str:
        return _listed(incident.ok_agents, _names(Agent, incident.ok_agents))

    @admin.action(description="Acknowledge the selected incidents", permissions=["acknowledge"])
    def acknowledge_selected(self, request, queryset):
        refused: dict[str, int] = {}
        done = 0
        for incident in queryset:
            message = self._acknowledge(request, incident, note="")
            if message:
                refused[message] = refused.get(message, 0) + 1
            done += not message
        if done:
            self.message_user(request, f"{done} incident{'s' * (done != 1)} acknowledged.", messages.SUCCESS)
        for message, count in refused.items():
            self.message_user(
                request, f"{count} incident{'s' * (count != 1)} not acknowledged: {message}", messages.WARNING
            )

    def _acknowledge(self, request, incident, note: str) -> str:
        """Acknowledge through the service; the refusal's message, or "" when acknowledged."""
        if not self.has_acknowledge_permission(request, incident):
            return "acknowledging needs the operator role in the incident's tenant."
        try:
            incident_acknowledge(actor=self.actor(request), incident=incident, note=note)
        except DomainError as exc:
            return exc.message
        self.log_change(request, incident, "Acknowledged." + (f" {note}" if note else ""))
        return ""

    def get_urls(self):
        view = self.admin_site.admin_view(self.acknowledge_view)
        return [path("<path:object_id>/acknowledge/", view, name="alerting_incident_acknowledge"), *super().get_urls()]

    def acknowledge_view(self, request, object_id):
        """The change page's Acknowledge button (POST; the admin's CSRF protection applies)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        incident = self.get_object(request, unquote(object_id))
        if incident is None:
            raise Http404("No such incident.")
        if not self.has_acknowledge_permission(request, incident):
            raise PermissionDenied
        refused = self._acknowledge(request, incident, note=request.POST.get("note", "").strip()[:2000])
        if refused:
            self.message_user(request, f"Not acknowledged: {refused}", messages.WARNING)
        else:
            self.message_user(request, "Incident acknowledged.", messages.SUCCESS)
        return redirect("admin:alerting_incident_change", incident.pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        incident = self.get_object(request, unquote(object_id))
        extra = {"show_delete": request.user.is_superuser}
        if incident is not None:
            extra |= self._history(request, incident)
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def _history(self, request, incident) -> dict:
        events = list(incident.events.select_related("actor"))
        agent_ids = {*incident.failing_agents, *incident.ok_agents}
        channel_ids = set()
        for event in events:
            agent_ids |= {*event.data.get("failing_agents", []), *event.data.get("ok_agents", [])}
            channel_ids |= set(event.data.get("channels", []))
        agents, channels = _names(Agent, agent_ids), _names(Channel, channel_ids)
        notifications = incident.notifications.select_related("channel").prefetch_related("delivery_attempts")
        return {
            "badges": format_html("{} {}", severity_badge(incident.severity), status_badge(incident.status)),
            "history": [(event, event_text(event.data, agents, channels, incident.metric_type)) for event in events],
            "notifications": notification_rows(notifications.order_by("created_at", "id")),
            "can_acknowledge": incident.status == IncidentStatus.ACTIVE
            and self.has_acknowledge_permission(request, incident),
        }


# ---------------------------------------------------------------------------------------------
# Rules


QUORUM_HELP = (
    "An endpoint incident opens when at least max(minimum agents, minimum percent of the agents reporting "
    "on it) breach. One agent failing most of its endpoints alone opens an agent network incident instead."
)
CONDITION_HELP = (
    "Status: no check succeeded in the window (operator and threshold do not apply). Aggregation: response "
    "time only. An incident opens once the condition has held for the duration, and resolves once it has "
    "been false as long."
)
CONDITION = ["metric", "operator", "threshold", "aggregation", "window_seconds", "duration_seconds"]


class AlertRuleForm(ServiceForm):
    section_ids = _picker("Sections")
    endpoint_ids = _picker("Endpoints")
    endpoint_tag_ids = _picker("Endpoint tags")
    agent_ids = _picker("Agents")
    metric_types = forms.MultipleChoiceField(
        choices=[(name, name) for name in METRIC_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Check types",
        help_text="None ticked: every check type (packet loss: ping only).",
    )
    field_aliases = {
        "min_agents": "quorum_min_agents",
        "min_percent": "quorum_min_percent",
        "notifications": "channels",
    }

    class Meta:
        model = AlertRule
        widgets = {
            "name": forms.TextInput(attrs={"class": "vLargeTextField"}),
            "description": forms.Textarea(attrs={"rows": 3}),
        }
        fields = ["tenant", "name", "description", "enabled", "severity", *CONDITION, "quorum_min_agents"]
        fields += ["quorum_min_percent", "channels", "cooldown_seconds", "notify_on_resolve"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in rule_services.FILTER_KEYS:
            self.fields[name].initial = (self.instance.filters or {}).get(name, [])

    def save_with(self, actor) -> AlertRule:
        """Create or change the rule through the service (filters and channels as it takes them)."""
        adding = self.instance._state.adding
        data = dict(self.cleaned_data) if adding else changed_data(self)
        filters = {name: data.pop(name) for name in rule_services.FILTER_KEYS if name in data}
        if "channels" in data:
            data["channel_ids"] = [channel.pk for channel in data.pop("channels")]
        if adding:
            return rule_services.alert_rule_create(actor=actor, filters=filters, **data)
        rule = AlertRule.objects.get(pk=self.instance.pk)  # the form's instance holds the new values already
        return rule_services.alert_rule_update(actor=actor, rule=rule, filters=filters or None, **data)


@admin.register(AlertRule)
class AlertRuleAdmin(ScopedPickersAdmin):
    form = AlertRuleForm
    # The window and the duration are part of the condition's cell: nine columns do not fit 1,280 px.
    list_display = ["rule_name", "enabled", "severity_cell", "condition", "quorum", "channel_count"]
    list_filter = ["enabled", "severity", "metric", "tenant"]
    search_fields = ["name", "description"]
    filter_horizontal = ["channels"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(channel_total=Count("channels", distinct=True))

    def get_fieldsets(self, request, obj=None):
        builtin = obj is not None and obj.builtin  # watches agents: no condition, quorum or endpoint filters
        watches = ["section_ids", "agent_ids"] if builtin else [*rule_services.FILTER_KEYS]
        folded = [] if obj is not None and any((obj.filters or {}).values()) else ["collapse"]  # nothing picked
        return [
            (None, {"fields": ["name", "tenant", "description", "enabled", "severity"]}),
            (
                "Condition",
                {"fields": ["metric", "duration_seconds"] if builtin else CONDITION, "description": CONDITION_HELP},
            ),
            *(
                []
                if builtin
                else [("Quorum", {"fields": ["quorum_min_agents", "quorum_min_percent"], "description": QUORUM_HELP})]
            ),
            (
                f"What it watches{': everything' if folded else ''}",
                {"fields": self.pickers_or_names(request, obj, watches), "classes": folded},
            ),
            ("Notifications", {"fields": ["channels", "cooldown_seconds", "notify_on_resolve"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        builtin = obj is not None and obj.builtin
        return [*super().get_readonly_fields(request, obj), *(["metric"] if builtin else [])]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "channels" in form.base_fields:
            queryset = Channel.objects.filter(tenant=obj.tenant) if obj else self._writable(Channel, request.user)
            form.base_fields["channels"].queryset = queryset
            form.base_fields["channels"].help_text = "Notified when an incident opens, is acknowledged and resolves."
        return form

    @admin.display(description="Severity", ordering="severity")
    def severity_cell(self, rule):
        return severity_badge(rule.severity)

    @admin.display(description="Name", ordering="name")
    def rule_name(self, rule):
        builtin = SafeString(' <span class="alert-badge status-acknowledged">built-in</span>') if rule.builtin else ""
        return format_html("{}{}", truncated(rule.name, 48), builtin)

    @admin.display(description="Condition", ordering="metric")
    def condition(self, rule):
        """``Response time p95 > 800``, then ``over 15 min, held 2 min``."""
        if rule.metric == Metric.AGENT_OFFLINE:
            return rule.get_metric_display()
        if rule.metric == Metric.STATUS:
            what = "No check succeeded"
        else:
            name = rule.get_metric_display().split(" (")[0]
            aggregation = f" {rule.aggregation}" if rule.metric == Metric.RESPONSE_TIME else ""
            what = f"{name}{aggregation} {rule.get_operator_display()} {rule.threshold:g}"
        held = f", held {short_duration(rule.duration_seconds)}" if rule.duration_seconds else ""
        return format_html(
            '{}<br><span class="quiet">over {}{}</span>', what, short_duration(rule.window_seconds), held
        )

    @admin.display(description="Quorum")
    def quorum(self, rule):
        if rule.metric == Metric.AGENT_OFFLINE:
            return "-"
        agents = f"≥ {rule.quorum_min_agents} agent{'s' * (rule.quorum_min_agents != 1)}"
        return format_html('<span class="nowrap">{}</span>, {} %', agents, f"{rule.quorum_min_percent:g}")

    @admin.display(description="Channels", ordering="channel_total")
    def channel_count(self, rule) -> int:
        return rule.channel_total

    def service_delete(self, request, obj):
        rule_services.alert_rule_delete(actor=self.actor(request), rule=obj)

    def get_deleted_objects(self, objs, request):
        """A rule's incidents go with it (the service deletes them): that operators may not delete
        incidents on their own must not keep them from deleting the rule."""
        deleted, counts, needed, protected = super().get_deleted_objects(objs, request)
        needed.discard(Incident._meta.verbose_name)
        return deleted, counts, needed, protected

    def change_view(self, request, object_id, form_url="", extra_context=None):
        rule = self.get_object(request, unquote(object_id))
        extra = {}
        if rule is not None:
            extra["show_delete"] = not rule.builtin  # the service refuses: no button that cannot work
            if request.method == "GET":
                extra["preview"] = rule_preview(rule)
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})


def rule_preview(rule: AlertRule, now=None) -> dict:
    """What the rule finds in the data now, so what it would open (or keeps open). Reads only."""
    now = now or timezone.now()
    shot = snapshot([rule], now)
    agents = {str(pk): agent.name for pk, agent in shot.agents.items()}
    opened = {
        (incident.kind, incident.endpoint_id if incident.kind == IncidentKind.ENDPOINT else incident.agent_id)
        for incident in rule.incidents.filter(status__in=OPEN)
    }
    rows = []
    for found in findings(rule, shot):
        endpoint = shot.endpoints.get(found.endpoint_id)
        subject = found.endpoint_id if found.kind == IncidentKind.ENDPOINT else found.agent_id
        rows.append(
            {
                "kind": IncidentKind(found.kind).label,
                "endpoint": truncated(str(endpoint), 64, wrap=True) if endpoint is not None else "",
                "agent": agents.get(str(found.agent_id), "") if found.agent_id else "",
                "failing": _listed(found.failing, agents) if found.failing else "",
                "ok": _listed(found.ok, agents) if found.ok else "",
                "value": value_text(rule.metric, found.value),
                "detail": found.detail,
                "open": (found.kind, subject) in opened,
            }
        )
    return {"rows": rows, "now": now}


# ---------------------------------------------------------------------------------------------
# Channels: the configuration per type, its secrets write-only


CHANNEL_KEYS = {kind: list(keys) for kind, keys in channel_services.KEYS.items()}
SECRETS = {"url", "secret", "webhook_url", "routing_key"}
CHANNEL_GROUPS = [
    ("Webhook", [ChannelType.WEBHOOK], ["url", "secret", "remove_secret"]),
    ("Slack, Discord, Teams", list(channel_services.CHAT_TYPES), ["webhook_url"]),
    ("PagerDuty", [ChannelType.PAGERDUTY], ["routing_key"]),
    ("Email", [ChannelType.EMAIL], ["recipients"]),
]


class WriteOnlyInput(forms.TextInput):
    """A text box that never shows a value back (not even the one just typed, after an error)."""

    def format_value(self, value):
        return None


def _write_only(label: str, help_text: str, *, password: bool = False) -> forms.CharField:
    attrs = {"autocomplete": "off", "class": "vLargeTextField"}
    widget = forms.PasswordInput(attrs=attrs) if password else WriteOnlyInput(attrs=attrs)
    return forms.CharField(label=label, required=False, widget=widget, help_text=help_text)


class ChannelForm(ServiceForm):
    url = _write_only("URL", "Where the JSON body is POSTed.")
    secret = _write_only("Signing secret", "Optional: signs each body (X-Smotra-Signature).", password=True)
    remove_secret = forms.BooleanField(required=False, label="Remove the signing secret")
    webhook_url = _write_only("Webhook URL", "The incoming-webhook URL the chat service gave you.")
    routing_key = _write_only("Routing key", "The PagerDuty Events API v2 integration key.", password=True)
    recipients = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Email addresses, one per line or separated by commas.",
    )

    class Meta:
        model = Channel
        fields = ["tenant", "name", "type", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        adding = self.instance._state.adding  # (its UUID primary key is set before it is saved)
        stored = {} if adding else self.instance.configuration
        self.fields["recipients"].initial = "\n".join(stored.get("recipients") or [])
        if not adding:
            for name in SECRETS:
                self.fields[name].help_text += f" Stored: {secret_state(name, stored)}. Leave empty to keep it."

    def configuration(self, channel_type: str) -> dict:
        """The keys for the service: the secrets typed (empty: keep the stored ones), the recipients."""
        data, keys = self.cleaned_data, CHANNEL_KEYS.get(channel_type, [])
        sent = {key: data[key] for key in keys if key in SECRETS and data.get(key)}
        if "secret" in keys and data.get("remove_secret"):
            sent["secret"] = ""
        if "recipients" in keys and (self.instance._state.adding or "recipients" in self.changed_data):
            sent["recipients"] = [part for part in re.split(r"[\s,;]+", data.get("recipients") or "") if part]
        return sent

    def save_with(self, actor) -> Channel:
        data = self.cleaned_data
        if self.instance._state.adding:
            fields = {name: data[name] for name in ("tenant", "name", "type", "enabled")}
            configuration = self.configuration(data["type"])
            return channel_services.channel_create(actor=actor, configuration=configuration, **fields)
        channel = Channel.objects.get(pk=self.instance.pk)
        changes = {name: value for name, value in changed_data(self).items() if name in ("name", "enabled")}
        configuration = self.configuration(channel.type) or None
        return channel_services.channel_update(actor=actor, channel=channel, configuration=configuration, **changes)


def secret_state(name: str, stored: dict) -> str:
    """``set`` or ``not set``; for a URL also its scheme and host (its path holds the token)."""
    value = stored.get(name)
    if not value:
        return "not set"
    try:
        parts = urlsplit(value) if name.endswith("url") else None
        host = parts and parts.hostname
    except ValueError:
        host = None
    return f"set ({parts.scheme}://{host}/…)" if host else "set"


@admin.register(Channel)
class ChannelAdmin(ServiceFormAdmin):
    form = ChannelForm
    write_role = Role.ADMIN
    list_display = ["name", "type", "enabled", "configured", "tenant_name"]
    list_filter = ["type", "enabled", "tenant"]
    search_fields = ["name"]
    list_select_related = ["tenant"]

    def get_fieldsets(self, request, obj=None):
        head = (None, {"fields": ["name", "tenant", "type", "enabled", *(["configured"] if obj else [])]})
        if obj is not None and not self.has_change_permission(request, obj):
            return [head]
        return [head, *self._configuration_fieldsets(obj)]

    def _configuration_fieldsets(self, obj) -> list:
        """On a new channel every type's fields, each group saying its types; then its type's only."""
        fieldsets = []
        for title, types, names in CHANNEL_GROUPS:
            if obj is None:
                only = ", ".join(str(ChannelType(kind).label) for kind in types)
                fieldsets.append((title, {"fields": names, "description": f"Only for {only} channels."}))
            elif obj.type in types:
                fieldsets.append(("Configuration", {"fields": names}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *(["type", "configured"] if obj else [])]

    @admin.display(description="Configuration")
    def configured(self, channel) -> str:
        """What is set, never a secret itself: ``url set; secret not set``, or the recipients."""
        stored = channel.configuration if isinstance(channel.configuration, dict) else {}
        parts = []
        for key in CHANNEL_KEYS.get(channel.type, []):
            if key == "recipients":
                parts.append(", ".join(stored.get(key) or []) or "no recipients")
            else:
                parts.append(f"{key.replace('_', ' ')} {'set' if stored.get(key) else 'not set'}")
        return truncated("; ".join(parts), 48)

    @admin.display(description="Tenant", ordering="tenant__name")
    def tenant_name(self, channel) -> str:
        return channel.tenant.name

    def service_delete(self, request, obj):
        channel_services.channel_delete(actor=self.actor(request), channel=obj)

    def get_urls(self):
        view = self.admin_site.admin_view(self.send_test_view)
        return [path("<path:object_id>/send-test/", view, name="alerting_channel_send_test"), *super().get_urls()]

    def send_test_view(self, request, object_id):
        """The change page's "Send test" button: a test notification, delivered now (POST, CSRF-checked)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        channel = self.get_object(request, unquote(object_id))
        if channel is None:
            raise Http404("No such channel.")
        if not self.has_change_permission(request, channel):
            raise PermissionDenied
        try:
            attempt = channel_services.channel_test(actor=self.actor(request), channel=channel)
        except DomainError as exc:
            self.message_user(request, f"No test sent: {exc.message}", messages.ERROR)
        else:
            self.message_user(request, *test_outcome(channel, attempt))
        return redirect("admin:alerting_channel_change", channel.pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        channel = self.get_object(request, unquote(object_id))
        extra = {}
        if channel is not None:
            recent = Notification.objects.filter(channel=channel).select_related("channel", "incident")
            recent = recent.prefetch_related("delivery_attempts").order_by("-created_at", "-id")[:10]
            extra["notifications"] = notification_rows(recent)
            extra["can_send_test"] = self.has_change_permission(request, channel)
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})


def test_outcome(channel, attempt) -> tuple[str, int]:
    """The admin message for a test send: delivered (HTTP status, time) or why not."""
    took = f"{attempt.duration_ms:.0f} ms"
    if attempt.outcome == "delivered":
        code = f"HTTP {attempt.status_code}, " if attempt.status_code else ""
        return f"Test notification delivered to {channel.name} ({code}{took}).", messages.SUCCESS
    return f"Test notification to {channel.name} failed: {attempt.error or 'no answer'} ({took}).", messages.ERROR


# ---------------------------------------------------------------------------------------------
# Maintenance windows


class WhenFilter(admin.SimpleListFilter):
    title = "when"
    parameter_name = "when"

    def lookups(self, request, model_admin):
        return [("now", "Active now"), ("upcoming", "Upcoming"), ("past", "Past")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "now":
            return queryset.filter(starts_at__lte=now, ends_at__gt=now)
        if self.value() == "upcoming":
            return queryset.filter(starts_at__gt=now)
        return queryset.filter(ends_at__lte=now) if self.value() == "past" else queryset


class MaintenanceWindowForm(ServiceForm):
    section_ids = _picker("Sections")
    endpoint_ids = _picker("Endpoints")
    agent_ids = _picker("Agents")

    class Meta:
        model = MaintenanceWindow
        fields = ["tenant", "name", "starts_at", "ends_at", "section_ids", "endpoint_ids", "agent_ids"]

    def save_with(self, actor) -> MaintenanceWindow:
        if self.instance._state.adding:
            return window_services.maintenance_window_create(actor=actor, **self.cleaned_data)
        window = MaintenanceWindow.objects.get(pk=self.instance.pk)
        return window_services.maintenance_window_update(actor=actor, window=window, **changed_data(self))


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(ScopedPickersAdmin):
    form = MaintenanceWindowForm
    list_display = ["name", "starts", "ends", "active_now", "covers", "tenant_name"]
    list_filter = [WhenFilter, "tenant"]
    search_fields = ["name"]
    list_select_related = ["tenant"]

    def get_fieldsets(self, request, obj=None):
        subjects = self.pickers_or_names(request, obj, ["section_ids", "endpoint_ids", "agent_ids"])
        return [
            (None, {"fields": ["name", "tenant", "starts_at", "ends_at"]}),
            ("What it covers", {"fields": subjects, "description": "Nothing picked: the whole tenant."}),
        ]

    @admin.display(description="Starts", ordering="starts_at")
    def starts(self, window):
        return datetime_cell(window.starts_at)

    @admin.display(description="Ends", ordering="ends_at")
    def ends(self, window):
        return datetime_cell(window.ends_at)

    @admin.display(description="Active now", boolean=True)
    def active_now(self, window) -> bool:
        return window.starts_at <= timezone.now() < window.ends_at

    @admin.display(description="Covers")
    def covers(self, window) -> str:
        counts = [(window.section_ids, "section"), (window.endpoint_ids, "endpoint"), (window.agent_ids, "agent")]
        listed = [f"{len(ids)} {noun}{'s' * (len(ids) != 1)}" for ids, noun in counts if ids]
        return ", ".join(listed) or "the whole tenant"

    @admin.display(description="Tenant", ordering="tenant__name")
    def tenant_name(self, window) -> str:
        return window.tenant.name

    def service_delete(self, request, obj):
        window_services.maintenance_window_delete(actor=self.actor(request), window=obj)
