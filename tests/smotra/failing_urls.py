"""The project's URLs plus views that fail, for the error-contract tests (never mounted outside tests)."""

from __future__ import annotations

from django.db import OperationalError
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from smotra.urls import handler400, handler403, handler404, handler500
from smotra.urls import urlpatterns as project_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


def plain_view_failure(request):
    raise RuntimeError("secret internals in a plain view")


class ApiFailureView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("secret internals in an API view")


class DatabaseDownView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        raise OperationalError("connection refused")


urlpatterns = [
    path("api/v1/test-failures/plain", plain_view_failure),
    path("api/v1/test-failures/api", ApiFailureView.as_view()),
    path("api/v1/test-failures/database", DatabaseDownView.as_view()),
    *project_urlpatterns,
]
