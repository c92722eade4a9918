"""Admin for tenants, sections, memberships, users and the audit log."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from smotra.admin import TenantScopedAdminMixin, TenantScopedInlineMixin, changed_data
from tenants import services
from tenants.models import AuditEvent, Membership, Role, Section, Tenant, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Accounts are managed by superusers (Django's own tools); members are granted via Membership."""

    list_display = ["username", "email", "is_staff", "is_superuser", "is_active", "last_login"]

    def has_module_permission(self, request):
        return request.user.is_superuser


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
class TenantAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "description", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]
    write_role = Role.ADMIN
    tenant_id_attr = "pk"

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
class SectionAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "tenant", "created_at"]
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
class MembershipAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "tenant__name"]
    list_select_related = ["user", "tenant"]
    write_role = Role.ADMIN
    tenant_id_attr = "tenant_id"

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
class AuditEventAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Read-only: the audit log is written by services and never edited."""

    list_display = ["created_at", "actor_label", "action", "object_type", "object_repr", "tenant", "source_address"]
    list_filter = ["action", "object_type", "tenant"]
    search_fields = ["actor_label", "object_id", "object_repr", "action"]
    date_hierarchy = "created_at"
    tenant_id_attr = "tenant_id"
    list_select_related = ["tenant"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
