"""The one tenant filter of the Django admin, and service-backed saves.

Non-superusers are staff members of tenants (Membership). Their permissions come from their roles,
not from Django's per-model permissions: viewers read, operators and admins write (per model, see
``write_role``). Every queryset and every related-object picker goes through ``visible_to``."""

from __future__ import annotations

import re
from datetime import datetime

from django.contrib import admin, messages
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from smotra.errors import DomainError
from tenants.models import ROLE_RANK, Membership, Role
from tenants.services import Actor, tenants_with_role, user_role


def _is_relation(model, path: str) -> bool:
    return get_fields_from_path(model, path)[-1].is_relation


def _visible(model, user):
    manager = model._default_manager
    return manager.visible_to(user) if hasattr(manager.all(), "visible_to") else manager.all()


# What a changelist filter's query string may add to the path it filters on (the sidebar's own
# links and the date hierarchy use these); anything else, e.g. ``__startswith``, is refused.
FILTER_LOOKUP_SUFFIXES = {"", "exact", "isnull", "in", "id__exact", "id__in", "gte", "lt", "lte", "gt"}
FILTER_LOOKUP_SUFFIXES |= {"year", "month", "day"}


class DeclaredFiltersOnlyMixin:
    """The changelist's query string may filter only on what ``list_filter`` and ``date_hierarchy``
    declare. Django also allows any lookup on any local field (``?secret__startswith=a``), which
    turns the row count into an oracle that reads a secret column one character at a time."""

    def _filter_paths(self, request) -> set[str]:
        paths = {self.date_hierarchy} if self.date_hierarchy else set()
        for item in self.get_list_filter(request):
            if isinstance(item, str):
                paths.add(item)
            elif isinstance(item, (tuple, list)):
                paths.add(item[0])
            else:  # a SimpleListFilter class: its own parameter, not a model lookup
                paths.add(item.parameter_name)
        return paths

    def lookup_allowed(self, lookup, value, request):
        for path in self._filter_paths(request):
            if lookup == path or (lookup.startswith(path + "__") and lookup[len(path) + 2 :] in FILTER_LOOKUP_SUFFIXES):
                return super().lookup_allowed(lookup, value, request)
        return False


class TenantScopedAdminMixin(DeclaredFiltersOnlyMixin):
    """Scope the changelist, the pickers and the permissions of a ModelAdmin to the user's tenants."""

    write_role = Role.OPERATOR
    # Path from the model to its tenant id, for object-level permission checks.
    tenant_id_attr = "section.tenant_id"

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    # -- pickers and filters ------------------------------------------------------------------

    def get_list_filter(self, request):
        return [
            (name, VisibleRelatedFieldListFilter) if isinstance(name, str) and _is_relation(self.model, name) else name
            for name in super().get_list_filter(request)
        ]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs.setdefault("queryset", self._writable(db_field.related_model, request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("queryset", _visible(db_field.related_model, request.user))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _writable(self, model, user):
        """Parents a user may attach objects to: those of tenants where they hold ``write_role``."""
        queryset = _visible(model, user)
        if user.is_superuser or not hasattr(queryset, "for_tenant"):
            return queryset
        return queryset.filter(**{f"{queryset.tenant_field or 'pk'}__in": tenants_with_role(user, self.write_role)})

    # -- permissions from roles ---------------------------------------------------------------

    def _has_role(self, request, obj, role) -> bool:
        return role_allows(request.user, None if obj is None else _attr_path(obj, self.tenant_id_attr), role)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff and self._has_role(request, None, Role.VIEWER)

    def has_view_permission(self, request, obj=None):
        return self._has_role(request, obj, Role.VIEWER)

    def has_add_permission(self, request):
        return self._has_role(request, None, self.write_role)

    def has_change_permission(self, request, obj=None):
        return self._has_role(request, obj, self.write_role)

    def has_delete_permission(self, request, obj=None):
        return self._has_role(request, obj, self.write_role)

    # -- writes through services --------------------------------------------------------------

    def actor(self, request) -> Actor:
        return Actor.from_request(request)

    def changeform_view(self, request, *args, **kwargs):
        """A refusal the form could not foresee (a race, a lost role) is a message, never a 500."""
        try:
            return super().changeform_view(request, *args, **kwargs)
        except DomainError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        saved = self.service_update(request, obj, form) if change else self.service_create(request, form)
        # The admin redirects and logs with obj: give it what the service saved (pk, and fields the
        # form does not hold, such as a membership's user).
        for field in obj._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        """Many-to-many fields are set by the services; inlines are saved by ``save_formset``."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_view(self, request, *args, **kwargs):
        """A refused deletion rolls back (the admin's log entry too) and says why, never "deleted"."""
        try:
            return super().delete_view(request, *args, **kwargs)
        except DomainError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(request.get_full_path())

    def delete_model(self, request, obj):
        self.service_delete(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            try:
                self.service_delete(request, obj)
            except DomainError as exc:
                messages.error(request, exc.message)
                forget_deletion_entry(request, obj)


def role_allows(user, tenant_id, role: str) -> bool:
    """Whether the user holds ``role`` in the tenant (tenant_id None: in at least one tenant)."""
    if user.is_superuser:
        return True
    if tenant_id is None:
        allowed = [name for name, rank in ROLE_RANK.items() if rank >= ROLE_RANK[role]]
        return Membership.objects.filter(user=user, role__in=allowed).exists()
    held = user_role(user, tenant_id)
    return held is not None and ROLE_RANK[held] >= ROLE_RANK[role]


def _attr_path(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


class TenantScopedInlineMixin:
    """Inline permissions follow the parent object's tenant role, like the parent admin's."""

    write_role = Role.OPERATOR
    parent_tenant_id_attr = "section.tenant_id"

    def _parent_allows(self, request, obj, role) -> bool:
        return role_allows(request.user, None if obj is None else _attr_path(obj, self.parent_tenant_id_attr), role)

    def has_view_permission(self, request, obj=None):
        return self._parent_allows(request, obj, Role.VIEWER)

    def has_add_permission(self, request, obj=None):
        return self._parent_allows(request, obj, self.write_role)

    def has_change_permission(self, request, obj=None):
        return self._parent_allows(request, obj, self.write_role)

    def has_delete_permission(self, request, obj=None):
        return self._parent_allows(request, obj, self.write_role)


class VisibleRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A related-object filter in the changelist's sidebar offering only what the user may see."""

    def field_choices(self, field, request, model_admin):
        visible = _visible(field.related_model, request.user).values("pk")
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(include_blank=False, ordering=ordering, limit_choices_to={"pk__in": visible})


def domain_error_to_form(form, exc: DomainError) -> None:
    """Show a service refusal on the form (on its field when the service named one)."""
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, ValidationError(exc.message))


def changed_data(form) -> dict:
    """The fields the person changed, as service keyword arguments."""
    return {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}


# ---------------------------------------------------------------------------------------------
# Compact changelist cells and the admin's own log ("Recent actions")


WBR = SafeString("<wbr>")


def forget_deletion_entry(request, obj) -> None:
    """Drop the deletion the bulk action logged before a service refused it: "Recent actions"
    must not list an object that still exists. (The action logs all rows, then deletes each.)"""
    content_type = ContentType.objects.get_for_model(obj, for_concrete_model=False)
    entries = LogEntry.objects.filter(
        user_id=request.user.pk, content_type=content_type, object_id=str(obj.pk), action_flag=DELETION
    )
    latest = entries.order_by("-action_time", "-pk").first()
    if latest is not None:
        latest.delete()


def short_datetime(value: datetime | None) -> str:
    """``2025-06-01 12:00:05`` in the admin's time zone: a column, not a sentence."""
    if value is None:
        return "-"
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S}"


def datetime_cell(value: datetime | None):
    """A changelist's time: the date over the time when the column is narrow, never split inside."""
    if value is None:
        return "-"
    date, time = short_datetime(value).split(" ")
    return format_html('<span class="nowrap">{}</span> <span class="nowrap">{}</span>', date, time)


def short_duration(seconds: int) -> str:
    """``45 s``, ``12 min``, ``23 h`` (up to two days), ``3 d``: rounded down, never negative."""
    seconds = max(0, int(seconds))
    for unit, size, below in (("s", 1, 60), ("min", 60, 3600), ("h", 3600, 2 * 86400)):
        if seconds < below:
            return f"{seconds // size} {unit}"
    return f"{seconds // 86400} d"


def time_ago(moment: datetime, now: datetime | None = None) -> str:
    """``12 s ago``, ``3 h ago`` (a moment in the future counts as now)."""
    return f"{short_duration(((now or timezone.now()) - moment).total_seconds())} ago"


def section_cell(section):
    """A section by its name, "tenant / section" as a tooltip: the whole does not fit a column
    (the tenant filter and the object's page say which tenant)."""
    return titled(section.name, str(section))


def titled(text: str, title: str):
    """A cell's short text with its long form as a tooltip."""
    return format_html('<span title="{}">{}</span>', title, text)


def truncated(text: str, length: int = 32, suffix: str = "", *, wrap: bool = False):
    """Long text (a URL, a tag list) cut to ``length`` characters, the whole of it as a tooltip.
    ``suffix`` (an endpoint's ``:port``) is never cut. ``wrap``: it may wrap after a dot or a
    slash, so a URL or a host name does not set the least width of a crowded list's column."""
    short = Truncator(text).chars(length) + suffix
    whole = text + suffix
    shown = breakable(short) if wrap else short
    return shown if short == whole else titled(shown, whole)


def breakable(text: str):
    """``text`` with a line-break opportunity (``<wbr>``) after each dot and slash (not inside ``//``)."""
    return format_html_join(WBR, "{}", ((part,) for part in re.split(r"(?<=\.)|(?<=/)(?!/)", text)))


def short_id(value, note: str = ""):
    """A UUID's first block (``0190a1b2…``), the whole id (and ``note``) as a tooltip: ids are
    told apart by their start, and a whole one does not fit a column."""
    text = str(value)
    title = f"{text} ({note})" if note else text
    return format_html('<code title="{}">{}&hellip;</code>{}', title, text[:8], f" ({note})" if note else "")
