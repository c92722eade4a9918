"""Bench-only URL layout: the project's (smotra.urls, unchanged) plus the bench's own two routes.

- ``/bench/baseline``: the baseline scenario's one-INSERT view (bench/baseline.py);
- ``/bench/sleep?seconds=S``: answers after S seconds (at most 30), for bench/probes.py's drain check."""

from __future__ import annotations

import time

from django.http import HttpRequest, JsonResponse
from django.urls import path

from bench.baseline import baseline_insert
from smotra.urls import handler400, handler403, handler404, handler500
from smotra.urls import urlpatterns as smotra_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


def sleep(request: HttpRequest) -> JsonResponse:
    seconds = min(30.0, max(0.0, float(request.GET.get("seconds", "1"))))
    time.sleep(seconds)
    return JsonResponse({"slept": seconds})


urlpatterns = [
    path("bench/baseline", baseline_insert, name="bench-baseline"),
    path("bench/sleep", sleep, name="bench-sleep"),
    *smotra_urlpatterns,
]
