"""Shared viewset pieces: service-backed create/update/destroy and their schema."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response


class ServiceSerializersMixin:
    """``serializer_class`` reads; ``create_serializer_class``/``update_serializer_class`` validate input."""

    create_serializer_class = None
    update_serializer_class = None

    def get_serializer_class(self):
        by_action = {"create": self.create_serializer_class, "partial_update": self.update_serializer_class}
        return by_action.get(self.action) or self.serializer_class

    def get_response_serializer(self, instance):
        return self.serializer_class(instance, context=self.get_serializer_context())


class ServiceCreateMixin(ServiceSerializersMixin):
    """POST: validate with ``get_serializer``, then ``create_object(**validated_data)`` (a service)."""

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = self.create_object(**serializer.validated_data)
        return Response(self.get_response_serializer(instance).data, status=status.HTTP_201_CREATED)


class ServiceUpdateMixin(ServiceSerializersMixin):
    """PATCH only (no accidental PUT): ``update_object(instance, **validated_data)`` (a service)."""

    def partial_update(self, request, *args, **kwargs):
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        instance = self.update_object(instance, **serializer.validated_data)
        return Response(self.get_response_serializer(instance).data)


class ServiceDestroyMixin:
    def destroy(self, request, *args, **kwargs):
        self.delete_object(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


def crud_schema(read, create, update, tag: str):
    """Document a TenantScopedCrudViewSet: separate request and response bodies, one tag."""
    return extend_schema_view(
        list=extend_schema(tags=[tag]),
        retrieve=extend_schema(tags=[tag]),
        create=extend_schema(request=create, responses={201: read}, tags=[tag]),
        partial_update=extend_schema(request=update, responses=read, tags=[tag]),
        destroy=extend_schema(responses={204: None}, tags=[tag]),
    )
