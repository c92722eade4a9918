"""API-wide views: the API info document (contract §1)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class ApiInfoSerializer(serializers.Serializer):
    message = serializers.CharField()
    api_version = serializers.CharField()
    app_version = serializers.CharField()


class ApiInfoView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses=ApiInfoSerializer, summary="API name and versions", tags=["meta"])
    def get(self, request):
        return Response({"message": "Monitoring API", "api_version": "v1", "app_version": settings.SMOTRA_VERSION})
