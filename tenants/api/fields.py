"""Serializer fields of the tenant filter, shared by the apps' APIs."""

from __future__ import annotations

from rest_framework import serializers


class VisiblePrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related id that must be visible to the requesting user (tenant-scoped); others 'do not exist'.

    Ids are UUID strings: a JSON number is refused (Django would read it as ``UUID(int=...)``)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)

    def get_queryset(self):
        return super().get_queryset().visible_to(self.context["request"].user)
