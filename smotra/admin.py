"""Project-wide admin pieces: declared filters only, form helpers, compact cells, the admin log.

The tenant filter of the admin (scoped querysets, pickers, role permissions) is tenants.admin_scoping."""

from __future__ import annotations

import re
from datetime import datetime

from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from smotra.errors import DomainError

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
