"""Admin for tags, endpoints and topologies (members edited inline)."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from endpoints import services
from endpoints.models import Endpoint, Tag, TagScope, Topology, TopologyMember
from smotra.admin import changed_data, section_cell, truncated
from tenants.admin_scoping import TenantScopedAdminMixin, TenantScopedInlineMixin

ENDPOINT_TAG_SCOPES = [TagScope.ENDPOINT, TagScope.GLOBAL]  # agent tags belong to agents


class SectionColumnMixin:
    """The section column of a list: the section's name, the tenant's in a tooltip."""

    @admin.display(description="Section", ordering="section__name")
    def section_name(self, obj):
        return section_cell(obj.section)


def _tags_of_same_section(form, section, tags, field: str = "tags") -> None:
    """Tag pickers offer only the object's section once it is known; the form checks the rest."""
    if section is not None and any(tag.section_id != section.pk for tag in tags or []):
        form.add_error(field, "Pick tags of the same section only.")


@admin.register(Tag)
class TagAdmin(SectionColumnMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "scope", "section_name"]
    list_filter = ["scope", "section__tenant", "section"]
    search_fields = ["name", "section__name"]
    list_select_related = ["section__tenant"]

    def get_readonly_fields(self, request, obj=None):
        return ["section"] if obj else []

    def service_create(self, request, form):
        return services.tag_create(actor=self.actor(request), **form.cleaned_data)

    def service_update(self, request, obj, form):
        return services.tag_update(actor=self.actor(request), tag=obj, **changed_data(form))

    def service_delete(self, request, obj):
        services.tag_delete(actor=self.actor(request), tag=obj)


class EndpointForm(forms.ModelForm):
    class Meta:
        model = Endpoint
        fields = ["section", "address", "port", "enabled", "description", "tags"]
        widgets = {"address": forms.TextInput(attrs={"class": "vLargeTextField"})}  # URLs are long

    def clean(self):
        data = super().clean()
        _tags_of_same_section(self, data.get("section") or getattr(self.instance, "section", None), data.get("tags"))
        return data


@admin.register(Endpoint)
class EndpointAdmin(SectionColumnMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    form = EndpointForm
    list_display = ["endpoint_address", "enabled", "section_name", "tag_list"]  # the rest is on its page
    list_filter = ["enabled", "section__tenant", "section", "tags"]
    search_fields = ["address", "description", "id"]
    list_select_related = ["section__tenant"]
    filter_horizontal = ["tags"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("tags")

    @admin.display(description="Address", ordering="address")
    def endpoint_address(self, endpoint):
        return truncated(endpoint.address, 40, f":{endpoint.port}" if endpoint.port else "")

    @admin.display(description="Tags")
    def tag_list(self, endpoint):
        return truncated(", ".join(tag.name for tag in endpoint.tags.all()), 40)

    def get_readonly_fields(self, request, obj=None):
        return ["section", "self_endpoint_of"] if obj else []

    @admin.display(description="Self endpoint of")
    def self_endpoint_of(self, endpoint):
        """The agent this endpoint stands for (made from its registration), if any."""
        agent = getattr(endpoint, "self_agent", None)
        return agent.name if agent is not None else "-"

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "tags" in form.base_fields:  # absent when read-only (viewers)
            tags = form.base_fields["tags"].queryset.filter(scope__in=ENDPOINT_TAG_SCOPES)
            form.base_fields["tags"].queryset = tags.filter(section=obj.section) if obj is not None else tags
        return form

    def service_create(self, request, form):
        data = dict(form.cleaned_data)
        data["tag_ids"] = [tag.pk for tag in data.pop("tags", [])]
        return services.endpoint_create(actor=self.actor(request), **data)

    def service_update(self, request, obj, form):
        data = changed_data(form)
        if "tags" in data:
            data["tag_ids"] = [tag.pk for tag in data.pop("tags")]
        return services.endpoint_update(actor=self.actor(request), endpoint=obj, **data)

    def service_delete(self, request, obj):
        services.endpoint_delete(actor=self.actor(request), endpoint=obj)


class TopologyMemberInline(TenantScopedInlineMixin, admin.TabularInline):
    model = TopologyMember
    extra = 2
    fields = ["tag", "role"]

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        tags = Tag.objects.visible_to(request.user)
        formset.form.base_fields["tag"].queryset = tags.filter(section=obj.section) if obj else tags
        return formset


@admin.register(Topology)
class TopologyAdmin(SectionColumnMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "type", "enabled", "section_name", "member_summary"]
    list_filter = ["type", "enabled", "section__tenant", "section"]
    search_fields = ["name", "section__name"]
    list_select_related = ["section__tenant"]
    inlines = [TopologyMemberInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("members__tag")

    @admin.display(description="Members")
    def member_summary(self, topology):
        return truncated(", ".join(f"{member.tag.name} ({member.role})" for member in topology.members.all()), 48)

    def get_readonly_fields(self, request, obj=None):
        return ["section"] if obj else []

    def service_create(self, request, form):
        return services.topology_create(actor=self.actor(request), **form.cleaned_data)

    def service_update(self, request, obj, form):
        return services.topology_update(actor=self.actor(request), topology=obj, **changed_data(form))

    def service_delete(self, request, obj):
        services.topology_delete(actor=self.actor(request), topology=obj)

    def save_formset(self, request, form, formset, change):
        """Members are added and removed through the services (each bumps configuration versions)."""
        topology = form.instance
        members = formset.save(commit=False)
        for member in formset.deleted_objects:
            services.topology_member_remove(actor=self.actor(request), member=member)
        for member in members:
            if member.pk and not member._state.adding:
                services.topology_member_remove(
                    actor=self.actor(request), member=TopologyMember.objects.get(pk=member.pk)
                )
            services.topology_member_add(actor=self.actor(request), topology=topology, tag=member.tag, role=member.role)
