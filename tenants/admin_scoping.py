"""The one tenant filter of the Django admin, and service-backed saves.

Non-superusers are staff members of tenants (Membership). Their permissions come from their roles,
not from Django's per-model permissions: viewers read, operators and admins write (per model, see
``write_role``). Every queryset and every related-object picker goes through ``visible_to``."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import get_fields_from_path
from django.http import HttpResponseRedirect

from smotra.admin import DeclaredFiltersOnlyMixin, forget_deletion_entry
from smotra.errors import DomainError
from tenants.models import ROLE_RANK, Membership, Role
from tenants.services import Actor, tenants_with_role, user_role


def _is_relation(model, path: str) -> bool:
    return get_fields_from_path(model, path)[-1].is_relation


def _visible(model, user):
    manager = model._default_manager
    return manager.visible_to(user) if hasattr(manager.all(), "visible_to") else manager.all()


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
