"""Oversized and malformed bodies against the real server (gunicorn) over raw sockets.

Four concurrent unauthenticated 10 MB registration bodies of ``[{},{},...]`` (each a few hundred MB
once parsed) are refused with a JSON 413 after at most agent.max_body_bytes + 1 bytes, declared or
chunked, and the workers' memory hardly moves. A chunked body with bad framing is a 4xx, never a
500, and leaves no traceback in the log (Django's JSON 400, or gunicorn's own when it answers first)."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import CANONICAL, check_contract_error
from tests.server import Response

pytestmark = pytest.mark.server

BODY_BYTES = 10 * 1024 * 1024
RSS_GROWTH_LIMIT = 50 * 1024 * 1024
REGISTER = f"{CANONICAL}/agent/register"


def empty_objects(size: int) -> bytes:
    return b"[" + b",".join([b"{}"] * ((size - 1) // 3)) + b"]"


def chunks(body: bytes, size: int = 64 * 1024) -> bytes:
    pieces = [body[start : start + size] for start in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def head(path: str, *, length: int | None = None) -> bytes:
    """A POST head declaring ``length``, or a chunked body when None."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", "Content-Type: application/json"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def exchange(port: int, request_head: bytes, body: bytes, *, end_body: bool = False) -> Response:
    """Send ``body`` from a thread while reading the answer here: a server that answers early and
    closes must not cost us its answer (our unsent bytes would otherwise reset the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request_head)

        def write():
            with contextlib.suppress(OSError):
                sock.sendall(body)
                if end_body:
                    sock.shutdown(socket.SHUT_WR)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        content = reply.read()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        writer.join(timeout=30)
        return Response(reply.status, {name.lower(): value for name, value in reply.getheaders()}, content)


def descendants(pid: int) -> dict[int, int]:
    """``{pid: parent}`` of every process below ``pid``."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    below, frontier = {}, {pid}
    while frontier:
        found = {child: parent for child, parent in parents.items() if parent in frontier}
        below.update(found)
        frontier = set(found)
    return below


def workers_rss(server) -> int:
    """The summed VmRSS of the gunicorn workers (children of gunicorn's master, itself a child of
    ``manage.py serve``)."""
    tree = descendants(server.process.pid)
    masters = {pid for pid, parent in tree.items() if parent == server.process.pid}
    total = 0
    for pid in (pid for pid, parent in tree.items() if parent in masters):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


class PeakRss:
    """Samples the workers' RSS every 20 ms while the block runs; ``peak`` is the largest seen."""

    def __init__(self, server):
        self.server, self.peak, self._stop = server, 0, threading.Event()

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, workers_rss(self.server))
            time.sleep(0.02)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, workers_rss(self.server))


def all_at_once(port: int, requests: list[tuple[bytes, bytes]]) -> list[Response]:
    replies: list = [None] * len(requests)

    def run(index: int, request_head: bytes, body: bytes):
        try:
            replies[index] = exchange(port, request_head, body)
        except (OSError, http.client.HTTPException) as exc:
            replies[index] = exc

    threads = [threading.Thread(target=run, args=(i, *request)) for i, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return replies


def test_four_concurrent_10_mb_registrations_are_refused_without_growing_the_workers(server_factory):
    server = server_factory()
    body = empty_objects(BODY_BYTES)
    bursts = {
        "content_length": [(head(REGISTER, length=len(body)), body)] * 4,
        "chunked": [(head(REGISTER), chunks(body))] * 4,
        # Django decodes the escape and routes it to registration: it must be as small there.
        "percent_encoded": [(head(f"{CANONICAL}/agent/regist%65r", length=len(body)), body)] * 4,
    }
    for _ in range(8):  # warm every worker thread up (imports, connections) before the baseline
        assert server.request("POST", REGISTER, {"agentId": "x"}).status == 400
    baseline = workers_rss(server)
    assert baseline > 0

    peaks = {}
    for framing, requests in bursts.items():
        with PeakRss(server) as rss:
            replies = all_at_once(server.port, requests)
        peaks[framing] = rss.peak
        for reply in replies:
            assert isinstance(reply, Response), (framing, reply)
            assert check_contract_error(reply, 413)["error"] == "payload_too_large", framing

    growth = {framing: (peak - baseline) / 2**20 for framing, peak in peaks.items()}
    assert max(peaks.values()) - baseline < RSS_GROWTH_LIMIT, f"workers grew by {growth} MiB"
    assert server.request("GET", "/healthz").status == 200
    assert "Traceback" not in server.log()


# name: (body, client half-closes after it). A client that hangs up mid-body may also get no answer
# at all (the connection closed): there is nobody left to read one, and that is not a failure.
MALFORMED_CHUNKS = {
    "invalid chunk size": (b"zz\r\n{}\r\n0\r\n\r\n", False),
    "missing chunk terminator": (b"2\r\n{}XX0\r\n\r\n", False),
    "body ends mid-chunk": (b"100\r\n{}", True),
}
MALFORMED_PATHS = (REGISTER, "/agent/register", "/admin/login/")


def malformed_problem(port: int, path: str, body: bytes, end_body: bool) -> str | None:
    """What is wrong with the answer to a malformed chunked body on ``path`` (None: all well)."""
    try:
        reply = exchange(port, head(path), body, end_body=end_body)
    except http.client.RemoteDisconnected:
        return None if end_body else "closed without an answer"
    content_type = reply.headers.get("content-type", "")
    if reply.status != 400 or not content_type.startswith("application/json"):
        return f"{reply.status} {content_type}: {reply.body[:200]!r}"
    return None if json.loads(reply.body).get("error") else f"no error code: {reply.body[:200]!r}"


def test_a_malformed_chunked_body_is_a_400_without_a_traceback(server_factory):
    server = server_factory()

    problems = {
        f"{case} on {path}": malformed_problem(server.port, path, body, end_body)
        for case, (body, end_body) in MALFORMED_CHUNKS.items()
        for path in MALFORMED_PATHS
    }

    assert not {case: problem for case, problem in problems.items() if problem}
    assert server.request("GET", "/healthz").status == 200
    log = server.log()
    assert "Traceback" not in log
    assert 500 not in [json.loads(line)["status"] for line in log.splitlines() if '"smotra.access"' in line]
