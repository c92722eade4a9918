"""Admin for tenants, sections, memberships, users and the audit log."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from smotra.admin import changed_data, datetime_cell, truncated
from tenants import services
from tenants.admin_scoping import TenantScopedAdminMixin, TenantScopedInlineMixin
from tenants.models import AuditEvent, Membership, Role, Section, Tenant, User


class ListColumnsMixin:
    """Columns that wrap and stay short: foreign keys and dates of Django's own cells do not wrap."""

    @admin.display(description="Tenant", ordering="tenant__name")
    def tenant_name(self, obj) -> str:
        return obj.tenant.name if obj.tenant_id else "-"

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj):
        return datetime_cell(obj.created_at)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Accounts are managed by superusers (Django's own tools); members are granted via Membership."""

    list_display = ["username", "email", "access", "last_login_at"]  # four flags were too wide

    def has_module_permission(self, request):
        return request.user.is_superuser

    @admin.display(description="Access")
    def access(self, user) -> str:
        """What the account may do in one word (the flags are filters and on the user's page)."""
        if not user.is_active:
            return "inactive"
        if user.is_superuser:
            return "superuser"
        return "staff" if user.is_staff else "API only"

    @admin.display(description="Last login", ordering="last_login")
    def last_login_at(self, user):
        return datetime_cell(user.last_login)


class MembershipInline(TenantScopedInlineMixin, admin.TabularInline):
    model = Membership
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]

    parent_tenant_id_attr = "pk"

    def has_add_permission(self, request, obj=None):
        return False  # memberships are added on their own page, through the service

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Tenant)
class TenantAdmin(ListColumnsMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "short_description", "created"]
    search_fields = ["name"]
    inlines = [MembershipInline]
    write_role = Role.ADMIN
    tenant_id_attr = "pk"

    @admin.display(description="Description")
    def short_description(self, tenant):
        return truncated(tenant.description, 48) or "-"

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def service_create(self, request, form):
        return services.tenant_create(actor=self.actor(request), **form.cleaned_data)

    def service_update(self, request, obj, form):
        return services.tenant_update(actor=self.actor(request), tenant=obj, **changed_data(form))

    def service_delete(self, request, obj):
        services.tenant_delete(actor=self.actor(request), tenant=obj)


@admin.register(Section)
class SectionAdmin(ListColumnsMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "tenant_name", "created"]
    list_filter = ["tenant"]
    search_fields = ["name", "tenant__name"]
    list_select_related = ["tenant"]
    write_role = Role.ADMIN
    tenant_id_attr = "tenant_id"

    def get_readonly_fields(self, request, obj=None):
        return ["tenant"] if obj else []

    def service_create(self, request, form):
        return services.section_create(actor=self.actor(request), **form.cleaned_data)

    def service_update(self, request, obj, form):
        return services.section_update(actor=self.actor(request), section=obj, **changed_data(form))

    def service_delete(self, request, obj):
        services.section_delete(actor=self.actor(request), section=obj)


class MembershipForm(forms.ModelForm):
    """Tenant admins name an existing user by username (they cannot browse all user accounts)."""

    username = forms.CharField(max_length=150)

    class Meta:
        model = Membership
        fields = ["tenant", "role"]

    def clean_username(self):
        username = self.cleaned_data["username"]
        if not User.objects.filter(username=username).exists():
            raise forms.ValidationError(f"No user named {username!r}.")
        return username

    def clean(self):
        data = super().clean()
        exists = Membership.objects.filter(tenant=data.get("tenant"), user__username=data.get("username")).exists()
        if exists:
            raise forms.ValidationError("This user is already a member of this tenant.")
        return data


@admin.register(Membership)
class MembershipAdmin(ListColumnsMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["member", "tenant_name", "role", "created"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "tenant__name"]
    list_select_related = ["user", "tenant"]
    write_role = Role.ADMIN
    tenant_id_attr = "tenant_id"

    @admin.display(description="User", ordering="user__username")
    def member(self, membership) -> str:
        return membership.user.get_username()

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = MembershipForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["user", "tenant", "role"] if obj else ["tenant", "username", "role"]

    def get_readonly_fields(self, request, obj=None):
        return ["user", "tenant"] if obj else []

    def service_create(self, request, form):
        data = form.cleaned_data
        return services.membership_create(
            actor=self.actor(request), tenant=data["tenant"], username=data["username"], role=data["role"]
        )

    def service_update(self, request, obj, form):
        return services.membership_update(actor=self.actor(request), membership=obj, role=form.cleaned_data["role"])

    def service_delete(self, request, obj):
        services.membership_delete(actor=self.actor(request), membership=obj)


@admin.register(AuditEvent)
class AuditEventAdmin(ListColumnsMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    """Read-only: the audit log is written by services and never edited."""

    # What happened, by whom, to what; the object's type and id and the source address are on its page.
    list_display = ["created", "actor_name", "action", "object", "tenant_name"]
    list_filter = ["action", "object_type", "tenant"]
    search_fields = ["actor_label", "object_id", "object_repr", "action"]
    date_hierarchy = "created_at"
    tenant_id_attr = "tenant_id"
    list_select_related = ["tenant"]

    @admin.display(description="Actor", ordering="actor_label")
    def actor_name(self, event) -> str:
        return event.actor_label

    @admin.display(description="Object", ordering="object_repr")
    def object(self, event):
        return truncated(event.object_repr, 28) or "-"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
