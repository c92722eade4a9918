"""Gunicorn's gthread worker, hardened against slow clients and answering its own errors in JSON.

- **Requests are read in the poller.** gthread gives a connection to a thread as soon as a byte
  arrives, and the thread then blocks reading the request: workers x threads clients trickling
  bytes stop the server. Here the poller thread reads each request (head, and a Content-Length or
  chunked body) without blocking into a buffer, and hands the connection to a thread only once the
  request is whole, unreading the bytes into gunicorn's parser. The whole request must arrive
  within ``server.read_timeout`` (Go's ReadTimeout), else the connection is closed after a JSON 408.
  A head past gunicorn's limits, a body past its route's limit (``smotra.middleware.body_limit``)
  or broken framing goes to a thread at once, to be refused from the bytes already there. TLS
  connections are read as gthread does: their bytes are readable only after a thread's handshake.
- **Graceful closes linger in the poller.** gthread closes a finished connection with
  ``util.close_graceful`` in its poller thread, blocking every connection for up to 2 s on a client
  that does not close; here the draining is done by the poller, without blocking.
- **Gunicorn's own errors** (431, 414, 400, 501, 500) keep gunicorn's status and log line but carry
  the API's error body (``{"error", "message", "request_id"}``) instead of an HTML page. Chunked
  bodies are decoded before the application runs, so broken framing is such an error (400), not an
  exception inside Django (500).
- **Draining.** The stock worker stops accepting on SIGTERM but keeps its copy of the listening
  socket open until it exits. Meanwhile the kernel still completes handshakes into a backlog nobody
  accepts, and the close at exit resets all of them: the client cannot tell such a request from one
  lost while being served. This worker accepts (and serves) whatever is already queued, then closes
  its copy at once; with the master's copy already closed, later connections are refused, which a
  client knows to be safe to retry.
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
import selectors
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus

from gunicorn import util
from gunicorn.http.body import CHUNK_EXT_RE, Body, ChunkedReader, LengthReader
from gunicorn.http.errors import (
    ChunkMissingTerminator,
    InvalidChunkExtension,
    InvalidChunkSize,
    LimitRequestHeaders,
    LimitRequestLine,
    NoMoreData,
)
from gunicorn.http.message import DEFAULT_MAX_HEADERFIELD_SIZE, MAX_HEADERS, MAX_REQUEST_LINE, Request
from gunicorn.http.unreader import IterUnreader
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn, ThreadWorker
from uuid6 import uuid7

from smotra.config import get_config

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
RECV_SIZE = 64 * 1024
UNLIMITED_REQUEST_LINE = 1024 * 1024  # gunicorn's bound for limit_request_line = 0 in its fast parser
LINGER_SECONDS = 2.0  # util.close_graceful's defaults
LINGER_DRAIN = 64 * 1024
CHUNK_ERRORS = (InvalidChunkSize, ChunkMissingTerminator, InvalidChunkExtension)
ERROR_CODES = {
    400: "bad_request",
    403: "forbidden",
    408: "request_timeout",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "request_header_fields_too_large",
    500: "internal_error",
    501: "not_implemented",
}
REASONS = {414: "URI Too Long"}  # RFC 9110's phrase, as gunicorn writes it (Python: "Request-URI Too Long")
ERROR_MESSAGES = {
    414: "The request line is too long.",
    431: "The request header fields are too large.",
    500: "Internal server error.",
}
_HEX = re.compile(rb"[0-9A-Fa-f]+")


def error_answer(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 answer with the API's error body, closing the connection."""
    request_id = str(uuid7())
    reason = REASONS.get(status) or HTTPStatus(status).phrase
    code = ERROR_CODES.get(status, "bad_request" if status < 500 else "internal_error")
    body = json.dumps({"error": code, "message": message, "request_id": request_id}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nX-Request-ID: {request_id}\r\n\r\n"
    )
    return head.encode("ascii") + body


def error_message(status: int, exc: BaseException) -> str:
    if isinstance(exc, CHUNK_ERRORS):
        return "The chunked framing of the request body is invalid."
    # Otherwise gunicorn's words for what was wrong, clipped: they may quote the request.
    return ERROR_MESSAGES.get(status) or f"{HTTPStatus(status).phrase}: {str(exc)[:200]}"


def body_limit(path: str) -> int:
    """The largest body ``path`` accepts, as BodySizeLimitMiddleware enforces it."""
    from smotra.middleware import body_limit  # here: it needs Django set up, which a worker does after import

    return body_limit(path)


class ErrorPage:
    """Stands in for the client socket while gunicorn writes its HTML error page; keeps the status."""

    def __init__(self):
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0  # util.write_nonblock then just calls sendall

    def sendall(self, data: bytes) -> None:
        self.data += data

    def status(self) -> int:
        try:
            return int(self.data.split(b" ", 2)[1])  # b"HTTP/1.1 431 Request Header ..."
        except (IndexError, ValueError):
            return 500


@dataclass(frozen=True)
class Limits:
    """Sizes past which a request goes to a thread to be refused instead of being read further."""

    line: int  # request line, as gunicorn's parser bounds it
    headers: int  # header section: the parser's max_buffer_headers
    body: Callable[[str], int]  # a path's body limit, past which Django refuses the body (413)

    @classmethod
    def of(cls, cfg, body: Callable[[str], int]) -> Limits:
        """The limits gunicorn's Message and Request compute from ``cfg`` (gunicorn/http/message.py)."""
        line = cfg.limit_request_line
        if line < 0 or line >= MAX_REQUEST_LINE:
            line = MAX_REQUEST_LINE
        line = line or UNLIMITED_REQUEST_LINE
        fields = cfg.limit_request_fields if 0 < cfg.limit_request_fields <= MAX_HEADERS else MAX_HEADERS
        field_size = cfg.limit_request_field_size if cfg.limit_request_field_size > 0 else DEFAULT_MAX_HEADERFIELD_SIZE
        return cls(line, fields * (field_size + 2) + 4, body)


def chunk_size(line: bytes) -> int | None:
    """A chunk size line's size, or None where gunicorn's ChunkedReader refuses the line."""
    size, semicolon, extension = line.partition(b";")
    if semicolon:
        if not CHUNK_EXT_RE.fullmatch(b";" + extension):
            return None
        size = size.rstrip(b" \t")
    return int(size, 16) if _HEX.fullmatch(size) else None


class ChunkedFraming:
    """Follows a chunked body's framing (RFC 9112 section 7.1) through the buffer, without decoding.

    It only tells when the body has ended, or is malformed in a way gunicorn's ChunkedReader finds in
    the same bytes (a thread then refuses it without waiting for more); subtler faults, such as a bad
    trailer, are left to that reader once the body has ended.
    """

    def __init__(self, start: int, line_limit: int, trailer_limit: int):
        self.pos = start  # first byte not followed yet
        self.scanned = 0  # how far the current separator search got, so trickled bytes are not rescanned
        self.state = "size"
        self.left = 0  # data bytes still to come in the current chunk
        self.received = 0  # data bytes so far
        self.line_limit, self.trailer_limit = line_limit, trailer_limit

    def advance(self, buf: bytearray) -> bool:
        """Follow the framing as far as ``buf`` goes; True once the body has ended or is malformed."""
        steps = {"size": self._size_line, "data": self._data, "crlf": self._crlf, "trailers": self._trailers}
        while self.state != "end" and steps[self.state](buf):
            pass
        return self.state == "end"

    def _goto(self, state: str, pos: int) -> bool:
        self.state, self.pos, self.scanned = state, pos, 0
        return True

    def _find(self, buf: bytearray, separator: bytes) -> int:
        found = buf.find(separator, max(self.pos, self.scanned - len(separator) + 1))
        self.scanned = len(buf)
        return found

    def _size_line(self, buf: bytearray) -> bool:
        end = self._find(buf, b"\r\n")
        if end < 0:
            return len(buf) - self.pos > self.line_limit and self._goto("end", self.pos)
        size = chunk_size(bytes(buf[self.pos : end]))
        if size is None:
            return self._goto("end", end)
        self.left = size
        return self._goto("data" if size else "trailers", end + 2)

    def _data(self, buf: bytearray) -> bool:
        taken = min(self.left, len(buf) - self.pos)
        self.pos, self.left, self.received = self.pos + taken, self.left - taken, self.received + taken
        return not self.left and self._goto("crlf", self.pos)

    def _crlf(self, buf: bytearray) -> bool:
        if len(buf) - self.pos < 2:  # gunicorn reads two bytes before it judges them
            return False
        return self._goto("size" if buf[self.pos : self.pos + 2] == b"\r\n" else "end", self.pos + 2)

    def _trailers(self, buf: bytearray) -> bool:
        if buf.startswith(b"\r\n", self.pos) or self._find(buf, b"\r\n\r\n") >= 0:
            return self._goto("end", self.pos)
        return len(buf) - self.pos > self.trailer_limit and self._goto("end", self.pos)


class RequestReader:
    """One request's bytes, gathered by the poller until the request is whole or cannot become valid.

    The head is judged by gunicorn's own parser, run over the bytes so far: a thread later parsing
    the same bytes meets the same verdict without reading more. The body is judged by its framing.
    """

    def __init__(self, cfg, limits: Limits, peer, request_number: int, deadline: float):
        self.cfg, self.limits, self.peer, self.request_number = cfg, limits, peer, request_number
        self.deadline = deadline
        self.buf = bytearray()
        self.line_end = -1  # where the first line ends, once it has
        self.body_end = None  # a Content-Length body: where the request ends
        self.body_limit = 0  # its path's (Limits.body), once the head is parsed
        self.chunks = None  # a chunked body: its framing so far
        self.wants_continue = False  # Expect: 100-continue and the body is still to come
        self.continue_sent = False
        self.refusal = None  # a head past gunicorn's limits, for a thread to answer without parsing it

    def feed(self, data: bytes) -> bool:
        """Add received bytes; True when the connection should go to a thread now."""
        start = len(self.buf)
        self.buf += data
        if self.body_end is None and self.chunks is None:
            return self._head(start)
        return self._body_done()

    def _head(self, start: int) -> bool:
        line_ended = self.line_end < 0 and self.buf.find(b"\n", start) >= 0
        if line_ended:  # parsed once, so a bad request line is refused before the headers come
            self.line_end = self.buf.find(b"\n")
        if not line_ended and self.buf.find(b"\r\n\r\n", max(0, start - 3)) < 0:
            return self._head_too_large()
        try:
            parsed = self._parse_head()
        except Exception:  # malformed: a thread's parser raises the same from these bytes and answers it
            return True
        return self._start_body(*parsed) if parsed else self._head_too_large()

    def _parse_head(self) -> tuple[Request, int] | None:
        """gunicorn's parser over the bytes so far: the request and where its head ends, or None."""
        unreader = IterUnreader([bytes(self.buf)])
        try:
            request = Request(self.cfg, unreader, self.peer, self.request_number)
        except NoMoreData:
            return None
        self.body_limit = self.limits.body(request.path)
        return request, len(self.buf) - len(unreader.take_buffered())

    def _head_too_large(self) -> bool:
        # Past these sizes gunicorn's parser would still read once more before refusing; with a client
        # that sends nothing more that read would block a thread, so the refusal is decided here.
        if self.line_end < 0 and len(self.buf) > self.limits.line + 2:
            self.refusal = LimitRequestLine(len(self.buf), self.limits.line)
        elif self.line_end >= 0 and len(self.buf) - self.line_end > self.limits.headers:
            self.refusal = LimitRequestHeaders("max buffer headers")
        return self.refusal is not None

    def _start_body(self, request: Request, head_end: int) -> bool:
        reader = request.body.reader
        if isinstance(reader, ChunkedReader):
            self.chunks = ChunkedFraming(head_end, reader.limit_chunk_size_line, reader.limit_trailer_section)
        elif reader.length > self.body_limit:
            return True  # refused from its Content-Length alone (BodySizeLimitMiddleware), never read
        else:
            self.body_end = head_end + reader.length
        done = self._body_done()
        self.wants_continue = request._expected_100_continue and not done
        return done

    def _body_done(self) -> bool:
        if self.chunks is None:
            return len(self.buf) >= self.body_end
        # Past the limit the body is refused (413) from its first limit + 1 bytes.
        return self.chunks.advance(self.buf) or self.chunks.received > self.body_limit


class Connection(TConn):
    """gthread's connection, plus what the poller learnt while reading its request."""

    def __init__(self, cfg, sock, client, server, linger):
        super().__init__(cfg, sock, client, server)
        self.linger = linger
        self.continue_sent = False  # the poller asked for the body (Expect: 100-continue)
        self.refusal = None  # see RequestReader

    def close(self, graceful=False):
        # gthread closes finished connections gracefully in its poller thread (finish_request), where
        # util.close_graceful would block all connections for 2 s on a client that does not close.
        if graceful:
            self.linger(self)
        else:
            super().close()


@dataclass
class Linger:
    deadline: float
    drained: int = 0


class DrainingThreadWorker(ThreadWorker):
    """gthread reading requests in its poller, answering its own errors in JSON and closing its
    listener as soon as a stop begins (see the module)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read_timeout = get_config().server.read_timeout
        self.limits = Limits.of(self.cfg, body_limit)
        # Insertion-ordered, hence by deadline (a stop may cap some, see _cap_keepalive).
        self.reading: dict[Connection, RequestReader] = {}
        self.lingering: dict[Connection, Linger] = {}

    def connection(self, sock, address, listener) -> Connection:
        return Connection(self.cfg, sock, address, listener.getsockname(), self.linger)

    def accept(self, listener):
        try:
            sock, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self.enqueue_req(self.connection(sock, address, listener))

    def enqueue_req(self, conn):
        """Give ``conn`` a thread once its next request is whole (gthread: as soon as a byte is there)."""
        if self.cfg.is_ssl or conn.is_http2 or negotiation.prior_knowledge_allowed(self.cfg, conn.client):
            super().enqueue_req(conn)  # bytes a thread must unwrap or sniff before they are HTTP/1
        else:
            self.read_request(conn)

    def read_request(self, conn: Connection) -> None:
        number = conn.parser.req_count + 1 if conn.parser else 1
        reader = RequestReader(self.cfg, self.limits, conn.client, number, time.monotonic() + self.read_timeout)
        conn.sock.setblocking(False)
        self.reading[conn] = reader
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_request_bytes, conn))
        # What a thread read ahead (pipelining) may be only part of the next request.
        buffered = conn.parser.unreader.take_buffered() if conn.parser else b""
        if buffered:
            self.take(conn, reader, buffered)

    def on_request_bytes(self, conn: Connection, _sock) -> None:
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset by the client
            data = b""
        self.take(conn, self.reading[conn], data)

    def take(self, conn: Connection, reader: RequestReader, data: bytes) -> None:
        """Bytes of the request read by ``reader`` (empty: the client's end of the stream)."""
        if not data and not reader.buf:  # gone before sending a byte: nothing to answer
            self.drop(conn)
        elif not data or reader.feed(data):  # at EOF a thread's parser meets the same end and says so
            self.stop_reading(conn)
            self.dispatch(conn, reader)
        elif reader.wants_continue and not reader.continue_sent:
            self.ask_for_body(conn, reader)

    def ask_for_body(self, conn: Connection, reader: RequestReader) -> None:
        """Expect: 100-continue: the client holds its body back until asked, and we wait for it."""
        reader.continue_sent = True
        try:
            sent = conn.sock.send(CONTINUE)
        except OSError:
            sent = 0
        if sent < len(CONTINUE):  # a client that reads none of its answers
            self.drop(conn)

    def dispatch(self, conn: Connection, reader: RequestReader) -> None:
        conn.init()  # plain HTTP/1 only here: this makes the parser and reads nothing
        conn.parser.unreader.unread(reader.buf)
        conn.continue_sent, conn.refusal = reader.continue_sent, reader.refusal
        super().enqueue_req(conn)

    def stop_reading(self, conn: Connection) -> None:
        del self.reading[conn]
        self.poller.unregister(conn.sock)

    def drop(self, conn: Connection) -> None:
        self.stop_reading(conn)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self):
        super().murder_pending()
        now = time.monotonic()
        self.expire_requests(now)
        self.expire_lingering(now)

    def expire_requests(self, now: float) -> None:
        late = []
        for conn, reader in self.reading.items():
            if reader.deadline <= now:
                late.append(conn)
            elif self.alive:  # in deadline order until a stop capped some
                break
        for conn in late:
            self.request_timeout(conn, self.reading[conn])

    def request_timeout(self, conn: Connection, reader: RequestReader) -> None:
        """read_timeout passed before the whole request arrived: close, with a 408 if a request began."""
        self.stop_reading(conn)
        self.nr_conns -= 1
        if not reader.buf:  # nothing to answer: a 408 would be read as the answer to a later request
            conn.close()
            return
        ip = (conn.client or ("", -1))[0]
        self.log.warning("Request timeout from ip=%s: not received within %gs", ip, self.read_timeout)
        message = f"The request did not arrive within {self.read_timeout:g}s."
        with contextlib.suppress(OSError):  # best effort: the client may be gone or not reading
            conn.sock.send(error_answer(408, message))
        conn.close(graceful=True)

    def _cap_keepalive(self, deadline):
        """A stop gives connections that have sent nothing yet as long as kept-alive ones (gthread)."""
        super()._cap_keepalive(deadline)
        for reader in self.reading.values():
            if not reader.buf:
                reader.deadline = min(reader.deadline, deadline)

    def linger(self, conn: Connection) -> None:
        """util.close_graceful without blocking: FIN now, then drain until EOF, 64 KiB or 2 s, close."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            util.close(conn.sock)
            return
        conn.sock.setblocking(False)
        self.nr_conns += 1  # still open: a stopping worker waits for it, as for close_graceful
        self.lingering[conn] = Linger(time.monotonic() + LINGER_SECONDS)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_linger_bytes, conn))

    def on_linger_bytes(self, conn: Connection, _sock) -> None:
        linger = self.lingering[conn]
        try:
            data = conn.sock.recv(4096)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            return
        except OSError:
            data = b""
        linger.drained += len(data)
        if not data or linger.drained >= LINGER_DRAIN:
            self.end_linger(conn)

    def end_linger(self, conn: Connection) -> None:
        del self.lingering[conn]
        self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        util.close(conn.sock)

    def expire_lingering(self, now: float) -> None:
        late = []
        for conn, linger in self.lingering.items():
            if linger.deadline > now:
                break
            late.append(conn)
        for conn in late:
            self.end_linger(conn)

    def handle(self, conn):
        """A head refused by the poller is answered without parsing it; the rest as gthread does."""
        refusal, conn.refusal = conn.refusal, None
        if refusal is None:
            return super().handle(conn)
        conn.sock.setblocking(True)
        self.handle_error(None, conn.sock, conn.client, refusal)
        return False

    def handle_request(self, req, conn):
        if conn.continue_sent:  # gunicorn would send a second one
            conn.continue_sent = False
            req._expected_100_continue = False
        if isinstance(req.body.reader, ChunkedReader):
            self.read_chunked_body(req, conn)
        return super().handle_request(req, conn)

    def read_chunked_body(self, req, conn) -> None:
        """Decode a chunked body, at most the body limit + 1 bytes, before the application runs.

        gunicorn de-chunks while the application reads, so broken framing raised inside Django: a 500
        and a traceback. Raised here it reaches handle_error, a 400. The poller holds the bytes already
        (except for TLS). A longer body is cut at limit + 1 bytes, enough for the 413 of
        BodySizeLimitMiddleware, and its connection closed after the answer.
        """
        if req._expected_100_continue:  # the client may hold its body back until asked (TLS, or unasked)
            util.write(conn.sock, CONTINUE)
            req._expected_100_continue = False
        limit = body_limit(req.path)
        body = req.body.read(limit + 1)
        if len(body) > limit:
            req.force_close()
        req.body = Body(LengthReader(IterUnreader([body]), len(body)))

    def handle_error(self, req, client, addr, exc):
        """gunicorn's answer to a request it cannot parse or serve, in the API's error shape.

        gunicorn picks the status and logs as usual, writing its HTML page to a stand-in that keeps
        only the status, so the statuses cannot drift from gunicorn's own mapping.
        """
        page = ErrorPage()
        super().handle_error(req, page, addr, exc)
        status = page.status()
        try:
            util.write_nonblock(client, error_answer(status, error_message(status, exc)))
        except Exception:  # the client may be gone, as in gunicorn
            self.log.debug("Failed to send error message.")

    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            self.close_listeners()

    def close_listeners(self) -> None:
        for listener in self.sockets:
            if listener.sock is None:
                continue
            while True:
                try:
                    client, address = listener.accept()
                except OSError:  # BlockingIOError: nothing queued any more
                    break
                self.nr_conns += 1
                self.enqueue_req(self.connection(client, address, listener))
            listener.close()
