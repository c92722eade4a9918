"""Cross-cutting HTTP behaviour: request ids, access log, CORS, body size limit."""

from __future__ import annotations

import io
import logging
import re
import time
import uuid
from urllib.parse import unquote

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch, resolve
from gunicorn.http.errors import ParseException
from uuid6 import uuid7

from smotra.api.converters import AnyUUIDConverter
from smotra.api.errors import error_response
from smotra.http import client_address, is_api_path, sane_request_id
from smotra.logging import request_id_var

access_log = logging.getLogger("smotra.access")

CORS_ALLOWED_HEADERS = "Content-Type, Authorization, X-Request-ID, X-Agent-API-Key"
CORS_ALLOWED_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"


class RequestIdMiddleware:
    """Echo a sane X-Request-ID or mint a UUIDv7; expose it to logs and every response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = sane_request_id(request.headers.get("X-Request-ID")) or str(uuid7())
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


def _principal(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return "-"
    if getattr(user, "is_agent", False):
        return f"agent:{user.pk}"
    return f"user:{user.get_username()}"


class AccessLogMiddleware:
    """One line per request. Logs the path without its query string: secrets never reach the log."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        access_log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "client": client_address(request),
                "principal": _principal(request),
            },
        )
        return response


class CorsMiddleware:
    """CORS for the single configured origin (``cors.origin``; empty = no CORS headers at all).

    Twenty lines of our own instead of django-cors-headers: one origin, a fixed header list, and a
    204 preflight (that library answers preflights with 200)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.origin = settings.SMOTRA.cors.origin

    def __call__(self, request: HttpRequest) -> HttpResponse:
        origin = request.headers.get("Origin")
        allowed = bool(self.origin) and origin is not None and self.origin in ("*", origin)
        preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        if allowed and preflight:
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = CORS_ALLOWED_METHODS
            response["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
            response["Access-Control-Max-Age"] = "600"
        else:
            response = self.get_response(request)
        if allowed:
            response["Access-Control-Allow-Origin"] = self.origin
            response["Access-Control-Expose-Headers"] = "X-Request-ID, ETag, Retry-After"
            if self.origin != "*":
                response["Access-Control-Allow-Credentials"] = "true"
            response["Vary"] = ", ".join(filter(None, [response.get("Vary"), "Origin"]))
        return response


# Registration, claim, heartbeat, report and the login routes: small JSON objects, under any of the
# three mounts (/api/v1, /v1, the root). Unauthenticated routes among them must not buffer 10 MB each.
_SMALL_BODY_ROUTE = re.compile(
    r"/(?:agent/register|agents?/claim|agent/[^/]+/(?:heartbeat|report)|auth/(?:token|logout))/?$"
)


def body_limit(path: str) -> int:
    """The largest body accepted on ``path``: ``agent.max_body_bytes`` on the small routes,
    ``results.max_body_bytes`` on every other API path, DATA_UPLOAD_MAX_MEMORY_SIZE elsewhere (admin).

    ``path`` may be raw (gunicorn's worker asks before Django decodes it): percent-escapes are
    decoded first, so ``/agent/regist%65r``, which Django routes to registration, is small too."""
    if "%" in path:
        path = unquote(path)
    if not is_api_path(path):
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or settings.SMOTRA.results.max_body_bytes
    if _SMALL_BODY_ROUTE.search(path):
        return settings.SMOTRA.agent.max_body_bytes
    return settings.SMOTRA.results.max_body_bytes


class BodySizeLimitMiddleware:
    """Refuse bodies over the route's limit (:func:`body_limit`) with a JSON 413, before anything
    reads them. Chunked bodies are read here, at most limit + 1 bytes, on every path. The limit is
    left on the request (``request.body_limit``) for the JSON parser."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = body_limit(request.path)
        request.body_limit = limit
        return self._refusal(request, limit) or self.get_response(request)

    def _refusal(self, request: HttpRequest, limit: int) -> HttpResponse | None:
        length = 0
        if is_api_path(request.path):  # elsewhere Django itself enforces DATA_UPLOAD_MAX_MEMORY_SIZE
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return error_response(400, "bad_request", "Content-Length is not a number.")
        if not length and self._chunked(request):
            try:
                length = self._read_chunked(request, limit)
            except (ParseException, OSError, ValueError):
                # gunicorn raises InvalidChunkSize, ChunkMissingTerminator (ParseException) or
                # NoMoreData (an OSError) on bad framing or a client that hangs up mid-body; a
                # read from a stream already closed raises ValueError.
                return error_response(400, "bad_request", "The chunked request body is malformed.")
        if length > limit:
            return error_response(413, "payload_too_large", f"Request body exceeds the limit of {limit} bytes.")
        return None

    @staticmethod
    def _chunked(request: HttpRequest) -> bool:
        # gunicorn de-chunks the body and says so with wsgi.input_terminated; Django only reads
        # Content-Length bodies, so without this a chunked body would look empty.
        encoding = request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        return "chunked" in encoding and bool(request.META.get("wsgi.input_terminated"))

    @staticmethod
    def _read_chunked(request: HttpRequest, limit: int) -> int:
        body = request.META["wsgi.input"].read(limit + 1)
        if len(body) <= limit:  # hand it on as a body of known length
            request._stream = io.BytesIO(body)
            request.META["CONTENT_LENGTH"] = str(len(body))
        return len(body)


# The authenticated agent data plane under any of the three mounts (contract §1): the routes every
# agent calls every few seconds.
_AGENT_ROUTE = re.compile(
    r"/(?:api/v1/|v1/)?agent/(?P<agent_id>[^/]+)/(?P<route>heartbeat|report|results|configuration)"
)
# What SecurityMiddleware and XFrameOptionsMiddleware would add that matters for a JSON answer;
# Referrer-Policy, Cross-Origin-Opener-Policy and HSTS are left to the routes browsers load.
_AGENT_ROUTE_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}


class AgentRoutesMiddleware:
    """The agent data plane's own short chain: these routes are matched here and their view called
    at once, past the middleware only people's routes need (security headers but the two set here,
    static files, sessions, CSRF, users, messages, frames, login throttling) and past Django's
    resolver, which walks every pattern of three mounts. Profiled on a heartbeat that was a third of
    the request's CPU. Everything before this in MIDDLEWARE still runs (request id, access log,
    request metrics, CORS, body limits), and the per-view metrics are kept by running
    django-prometheus' after-middleware around the view here. Any other path, or an id that is not
    one, goes down the full chain (and is routed, or 404s, there)."""

    def __init__(self, get_response):
        from django_prometheus.middleware import PrometheusAfterMiddleware

        self.get_response = get_response
        # Errors outside DRF (a Host not allowed, a failed render) become the API's JSON answer
        # inside the per-view metrics and this chain's finishing, as every middleware's would.
        self.after = PrometheusAfterMiddleware(convert_exception_to_response(self._view))
        self.matches: dict[tuple[str, str], object] = {}  # (mount, route) -> a ResolverMatch to copy

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = _AGENT_ROUTE.fullmatch(request.path_info)
        if found is None:
            return self.get_response(request)
        try:
            agent_id = AnyUUIDConverter().to_python(found["agent_id"])
        except ValueError:
            return self.get_response(request)
        template = self._match(request.path_info[: found.start("agent_id")], found["route"])
        request.resolver_match = ResolverMatch(
            template.func,
            (),
            {"agent_id": agent_id},
            template.url_name,
            template.app_names,
            template.namespaces,
            template.route,
        )
        response = self.after(request)
        for header, value in _AGENT_ROUTE_HEADERS.items():
            response.headers.setdefault(header, value)
        if not response.streaming and not response.has_header("Content-Length"):
            # As CommonMiddleware sets it: without it gunicorn would answer chunked.
            response.headers["Content-Length"] = str(len(response.content))
        return response

    def _match(self, mount: str, route: str):
        key = (mount, route)
        if key not in self.matches:  # once per mount and route: resolved as Django would
            self.matches[key] = resolve(f"{mount}{uuid.UUID(int=0)}/{route}")
        return self.matches[key]

    def _view(self, request: HttpRequest) -> HttpResponse:
        request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware would check it (DisallowedHost: 400)
        match = request.resolver_match
        self.after.process_view(request, match.func, match.args, match.kwargs)
        response = match.func(request, *match.args, **match.kwargs)
        if hasattr(response, "render") and callable(response.render):
            response = response.render()  # a DRF Response, as Django's handler renders it
        return response
