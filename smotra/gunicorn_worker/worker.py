"""The worker class: gthread reading requests in its poller, lingering closes, draining, JSON errors."""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import ssl
import time
from dataclasses import dataclass
from functools import partial

from gunicorn import util
from gunicorn.http.body import Body, ChunkedReader, LengthReader
from gunicorn.http.unreader import IterUnreader
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn, ThreadWorker

from smotra.config import get_config
from smotra.gunicorn_worker.errors import (
    CONTINUE,
    LINGER_DRAIN,
    LINGER_SECONDS,
    RECV_SIZE,
    ErrorPage,
    body_limit,
    error_answer,
    error_message,
)
from smotra.gunicorn_worker.reading import Limits, RequestReader


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
