"""The baseline scenario: the least a request to this server can cost and still write to the database.

``POST /bench/baseline`` (the heartbeat's body) is answered by a view that does exactly one INSERT of
one row into ``bench_baseline``, a table the bench creates itself (:func:`create_table`), through a
raw cursor, and answers 202 with a small JSON body, as a heartbeat does.

It takes the same way through the server as the agent data plane: every middleware before
``smotra.middleware.AgentRoutesMiddleware`` (request id, access log, request metrics, CORS, body
limit), then the view called at once inside django-prometheus' after-middleware, with the two
security headers and a Content-Length, as that middleware does for agent routes. Going down the whole
chain instead (sessions, CSRF, users, messages, axes) and through the resolver would cost what agent
routes were made to skip, and flatter them. :class:`BaselineMiddleware` sits just before
AgentRoutesMiddleware (bench/settings.py), so every other path pays one string comparison more."""

from __future__ import annotations

from django.core.handlers.exception import convert_exception_to_response
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import resolve
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

PATH = "/bench/baseline"
TABLE = "bench_baseline"
_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}


def create_table() -> None:
    """The baseline's table (run once by bench/run.py, through `manage.py shell`, before serving)."""
    key = "bigserial PRIMARY KEY" if connection.vendor == "postgresql" else "integer PRIMARY KEY AUTOINCREMENT"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id {key}, received_at timestamp, body text)")


@csrf_exempt
def baseline_insert(request: HttpRequest) -> HttpResponse:
    """One INSERT of one row (in autocommit: one statement, one transaction), then a 202."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (received_at, body) VALUES (%s, %s)",
            [timezone.now(), request.body.decode("utf-8", "replace")],
        )
    return HttpResponse(b'{"status":"stored"}', status=202, content_type="application/json")


class BaselineMiddleware:
    """Answer :data:`PATH` the way AgentRoutesMiddleware answers agent routes; pass anything else on."""

    def __init__(self, get_response):
        from django_prometheus.middleware import PrometheusAfterMiddleware

        self.get_response = get_response
        self.after = PrometheusAfterMiddleware(convert_exception_to_response(self._view))
        self.match = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info != PATH:
            return self.get_response(request)
        if self.match is None:  # resolved once, so the per-view metrics name the view
            self.match = resolve(PATH)
        request.resolver_match = self.match
        response = self.after(request)
        for header, value in _HEADERS.items():
            response.headers.setdefault(header, value)
        response.headers["Content-Length"] = str(len(response.content))
        return response

    def _view(self, request: HttpRequest) -> HttpResponse:
        request.get_host()  # ALLOWED_HOSTS, as AgentRoutesMiddleware checks it
        self.after.process_view(request, self.match.func, (), {})
        return self.match.func(request)
