"""Slow and malformed clients against the real server (smotra.gunicorn_worker).

- Clients trickling their requests wait in the workers' pollers, not in their threads: health
  checks stay fast while more of them trickle than there are threads.
- A request must arrive whole within ``server.read_timeout``; later, the connection is closed
  (after a JSON 408).
- Clients that never close their side after a ``Connection: close`` answer do not stall a worker.
- Gunicorn's own refusals (431, 414, 400 for a bad request line or chunked framing) carry the API's
  JSON error body, and broken chunked framing is never a 500 or a traceback.
- Well-formed requests behave as before: chunked bodies, keep-alive, pipelining, 100-continue.

Raw sockets throughout: http.client and urllib cannot send broken framing or trickle a request.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from contextlib import closing, suppress

import pytest
from gunicorn.config import Config
from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine

from smotra.gunicorn_worker.reading import Limits, RequestReader
from tests.reliability.conftest import check_contract_error
from tests.server import Response, ServerProcess

pytestmark = pytest.mark.server

READ_TIMEOUT = 2.0
SHORT_READ_TIMEOUT = f"  read_timeout: {READ_TIMEOUT:g}s\n"
TOKEN = "/api/v1/auth/token"
HEAD = b"GET /healthz/live HTTP/1.1\r\nHost: 127.0.0.1\r\n"
LIVE = HEAD + b"\r\n"
LIVE_CLOSE = HEAD + b"Connection: close\r\n\r\n"
LOGIN = json.dumps({"username": "nobody"}).encode()  # a 400 (no password) that the login throttle ignores


def post_head(path: str, headers: bytes) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n%s\r\n" % (path.encode(), headers)


def chunked(*pieces: bytes, trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n" + trailer + b"\r\n"


CHUNKED = post_head(TOKEN, b"Transfer-Encoding: chunked\r\n")


def connect(server: ServerProcess, timeout: float = 5) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def read_reply(stream) -> Response | None:
    """One HTTP/1.1 answer from a buffered socket file (Content-Length bodies), or None at its end."""
    try:
        status_line = stream.readline()
    except ConnectionResetError:
        return None
    if not status_line:
        return None
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(status_line.split()[1])
    return Response(status, headers, stream.read(int(headers.get("content-length", 0)) if status >= 200 else 0))


def exchange(server: ServerProcess, data: bytes, *, shut_write: bool = False) -> list[Response]:
    """Send ``data`` on a new connection; every answer until the server closes it."""
    with closing(connect(server)) as sock, closing(sock.makefile("rb")) as stream:
        sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        replies = []
        while reply := read_reply(stream):
            replies.append(reply)
        return replies


def assert_json_error(reply: Response, status: int, code: str) -> dict:
    body = check_contract_error(reply, status)
    assert body["error"] == code, body
    assert reply.headers["x-request-id"] == body["request_id"]
    assert reply.headers["connection"] == "close"
    return body


def assert_health_is_fast(server: ServerProcess, times: int = 10) -> None:
    for _ in range(times):
        started = time.monotonic()
        assert server.request("GET", "/healthz/live", timeout=1).status == 200
        assert time.monotonic() - started < 1
        time.sleep(0.05)


class Trickler:
    """Sockets that each send their request one byte per ``interval``, in a background thread."""

    def __init__(self, server: ServerProcess, interval: float = 0.5):
        self.server, self.interval = server, interval
        self.clients: list[tuple[socket.socket, bytes]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def add(self, sent: bytes, trickled: bytes) -> None:
        sock = connect(self.server)
        sock.sendall(sent)
        self.clients.append((sock, trickled))

    def _run(self) -> None:
        offset = 0
        while not self.stopping.wait(self.interval):
            for sock, trickled in self.clients:
                with suppress(OSError):
                    sock.send(trickled[offset : offset + 1])
            offset += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()
        for sock, _ in self.clients:
            sock.close()


def wait_until_cut(sock: socket.socket, trickled: bytes = b"", interval: float = 0.2) -> bytes:
    """Trickle ``trickled`` (or send nothing) until the server answers or closes; what it sent."""
    received = b""
    for byte in [trickled[i : i + 1] for i in range(len(trickled))] or [b""] * 100:
        if byte:
            sock.sendall(byte)
        if select.select([sock], [], [], interval)[0]:
            break
    with suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_health_stays_fast_while_more_clients_trickle_than_there_are_threads(server_factory):
    server = server_factory(env={"SMOTRA_WORKERS": "2", "SMOTRA_THREADS": "4"})
    with Trickler(server) as trickler:
        for _ in range(24):  # request heads, one byte at a time
            trickler.add(b"G", LIVE[1:])
        for _ in range(8):  # whole heads, then their bodies one byte at a time
            trickler.add(post_head(TOKEN, b"Content-Length: 1000\r\n"), b"x" * 1000)
        time.sleep(1)  # every connection has sent bytes and would hold a thread in stock gthread

        assert_health_is_fast(server)

    assert "Traceback" not in server.log()


def test_a_request_not_whole_within_read_timeout_is_cut_off(server_factory):
    server = server_factory(config=SHORT_READ_TIMEOUT)
    started = time.monotonic()
    silent, trickling = connect(server), connect(server)
    silent.sendall(HEAD)  # a head that never ends

    # The deadline is for the whole request, however steadily its bytes come.
    trickling_reply = wait_until_cut(trickling, HEAD + b"X-Pad: " + b"a" * 200)
    trickling_cut = time.monotonic() - started
    silent_reply = wait_until_cut(silent)
    silent_cut = time.monotonic() - started

    for seconds, reply in ((trickling_cut, trickling_reply), (silent_cut, silent_reply)):
        assert READ_TIMEOUT - 0.5 < seconds < READ_TIMEOUT + 2.5, seconds
        if reply:  # the 408 is best effort
            head, _, body = reply.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 ")
            assert json.loads(body)["error"] == "request_timeout"
    silent.close()
    trickling.close()
    assert_health_is_fast(server, times=3)


def test_clients_that_never_close_do_not_stall_the_server(server_factory):
    server = server_factory()
    idle = [connect(server) for _ in range(6)]
    for sock in idle:
        sock.sendall(LIVE_CLOSE)  # answered, then our side stays open and unread
    time.sleep(0.3)

    assert_health_is_fast(server)

    for sock in idle:
        sock.close()


REFUSALS = [  # (what, request, status, error code)
    (
        "9,000-byte API key",
        HEAD + b"X-Agent-API-Key: " + b"k" * 9000 + b"\r\n\r\n",
        431,
        "request_header_fields_too_large",
    ),
    ("oversized request line", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414, "uri_too_long"),
    ("garbage request line", b"GARBAGE\r\n\r\n", 400, "bad_request"),
    ("chunk size zz", CHUNKED + b"zz\r\nhello\r\n0\r\n\r\n", 400, "bad_request"),
    ("chunk size -5", CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n", 400, "bad_request"),
    ("chunk longer than its size", CHUNKED + b"2\r\nhello\r\n0\r\n\r\n", 400, "bad_request"),
]


def test_gunicorn_refusals_carry_the_json_error_body(server_factory):
    server = server_factory()

    for what, request_bytes, status, code in REFUSALS:
        started = time.monotonic()
        replies = exchange(server, request_bytes)

        assert time.monotonic() - started < 1, f"{what}: not refused at once"
        assert len(replies) == 1, (what, replies)
        body = assert_json_error(replies[0], status, code)
        assert what.startswith("chunk") == ("chunked framing" in body["message"]), (what, body)
    assert "Traceback" not in server.log()


def test_a_truncated_chunked_body_is_never_a_500(server_factory):
    server = server_factory(config=SHORT_READ_TIMEOUT)
    truncated = CHUNKED + b"5\r\nab"

    for shut_write in (True, False):  # the client ends its side, or just stops sending
        replies = exchange(server, truncated, shut_write=shut_write)

        assert len(replies) <= 1, replies
        for reply in replies:
            assert reply.status in (400, 408), reply
            check_contract_error(reply)
    assert server.request("GET", "/healthz/live").status == 200
    assert "Traceback" not in server.log()


def test_well_formed_requests_behave_as_before(server_factory):
    server = server_factory()

    plain = exchange(server, post_head(TOKEN, b"Connection: close\r\nContent-Length: %d\r\n" % len(LOGIN)) + LOGIN)
    framed = post_head(TOKEN, b"Connection: close\r\nTransfer-Encoding: chunked\r\n")
    split = chunked(LOGIN[:5], LOGIN[5:], trailer=b"X-Checksum: 1\r\n")
    dechunked = exchange(server, framed + split)
    assert [r.status for r in plain] == [r.status for r in dechunked] == [400]
    assert check_contract_error(plain[0]) | {"request_id": ""} == check_contract_error(dechunked[0]) | {
        "request_id": ""
    }

    pipelined = exchange(server, LIVE + post_head(TOKEN, b"Content-Length: %d\r\n" % len(LOGIN)) + LOGIN + LIVE_CLOSE)
    assert [r.status for r in pipelined] == [200, 400, 200]


def test_keep_alive_pipelining_and_continue_work_on_one_connection(server_factory):
    server = server_factory()
    with closing(connect(server)) as sock, closing(sock.makefile("rb")) as stream:
        for _ in range(3):  # one after the other on the same connection
            sock.sendall(LIVE)
            reply = read_reply(stream)
            assert (reply.status, reply.headers["connection"]) == (200, "keep-alive")

        sock.sendall(LIVE + HEAD[:20])  # the next request only partly read ahead
        assert read_reply(stream).status == 200
        time.sleep(0.3)
        sock.sendall(HEAD[20:] + b"\r\n")
        assert read_reply(stream).status == 200

        # Read ahead behind another request, a head waiting for 100 Continue is still asked for its body.
        sock.sendall(LIVE + post_head(TOKEN, b"Expect: 100-continue\r\nContent-Length: %d\r\n" % len(LOGIN)))
        assert read_reply(stream).status == 200
        assert read_reply(stream).status == 100
        sock.sendall(LOGIN)
        assert read_reply(stream).status == 400  # answered once, with no second 100 Continue before it


def reader() -> RequestReader:
    cfg = Config()
    cfg.set("limit_request_fields", 10)  # a header section limit of 80 KiB, quick to reach byte by byte
    return RequestReader(cfg, Limits.of(cfg, lambda path: 1000), ("127.0.0.1", 1), 1, 0)


def verdicts(data: bytes) -> tuple[int | None, int | None, RequestReader]:
    """After how many bytes a reader hands the request over, fed all at once and byte by byte."""
    whole, by_byte = reader(), reader()
    at = next((i + 1 for i in range(len(data)) if by_byte.feed(data[i : i + 1])), None)
    return (len(data) if whole.feed(data) else None), at, by_byte


@pytest.mark.parametrize(
    ("data", "handed_over_at"),
    [
        (LIVE, len(LIVE)),
        (HEAD, None),
        (post_head(TOKEN, b"Content-Length: 5\r\n") + b"abc", None),
        (post_head(TOKEN, b"Content-Length: 5\r\n") + b"abcde", len(post_head(TOKEN, b"Content-Length: 5\r\n")) + 5),
        (CHUNKED + chunked(b"hello", b"world"), "end"),
        (CHUNKED + chunked(b"hi", trailer=b"X-A: 1\r\n"), "end"),
        (CHUNKED + b"5;ext=1\r\nhello\r\n0\r\n", None),
        (CHUNKED + b"zz\r\n", "end"),
        (CHUNKED + b"2\r\nhell", "end"),
        (post_head(TOKEN, b"Content-Length: 1001\r\n"), "end"),  # over the body limit: refused unread
        (b"GET /x HTTP/9.9\r\n", "end"),  # refused before the headers come
    ],
)
def test_the_reader_hands_a_request_over_once_whole_or_hopeless(data, handed_over_at):
    expected = len(data) if handed_over_at == "end" else handed_over_at

    whole, by_byte, _ = verdicts(data)

    assert (whole is not None, by_byte) == (expected is not None, expected)


def test_the_reader_refuses_heads_past_gunicorns_limits_itself():
    _, at, reader = verdicts(b"GET /" + b"a" * 5000)
    assert at == Config().limit_request_line + 3 and isinstance(reader.refusal, LimitRequestLine)

    _, at, reader = verdicts(HEAD + b"X-Pad: a\r\n" * 10_000)
    assert at is not None and isinstance(reader.refusal, LimitRequestHeaders)
