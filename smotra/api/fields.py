"""Serializer fields shared by the apps' APIs."""

from __future__ import annotations

from rest_framework import serializers


class VisiblePrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related id that must be visible to the requesting user (tenant-scoped); others 'do not exist'."""

    def get_queryset(self):
        return super().get_queryset().visible_to(self.context["request"].user)
