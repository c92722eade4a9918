"""A local HTTP receiver for delivery tests: records every request and answers from a script.

``with Receiver() as receiver:`` listens on 127.0.0.1 (a free port) in a thread per request.
``receiver.answer(500, 500, 200)`` queues the next statuses (then ``default_status``); a 3xx carries a
``Location`` back to this receiver; ``receiver.hang = 2.0`` holds every answer that long (or until
the receiver stops)."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self):
        return json.loads(self.body)


class Receiver:
    def __init__(self, default_status: int = 200):
        self.default_status = default_status
        self.hang = 0.0
        self.redirect_path = "/redirected"
        self.requests: list[Received] = []
        self._script: deque[int] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        # A short poll interval: shutdown() waits for the loop's next look (0.5 s by default).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, *statuses: int) -> None:
        with self._lock:
            self._script.extend(statuses)

    def take(self, request: Received) -> int:
        """Record ``request`` and return the status to answer it with."""
        with self._lock:
            self.requests.append(request)
            return self._script.popleft() if self._script else self.default_status

    def wait(self) -> None:
        if self.hang:
            self._stopping.wait(self.hang)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a hanging handler must not hold up the test's teardown
    receiver: Receiver

    def handle_error(self, request, client_address):
        pass  # the client gave up on a hanging answer: expected, not worth a traceback


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self):
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        status = receiver.take(Received(self.command, self.path, headers, body))
        receiver.wait()
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", receiver.url + receiver.redirect_path)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_PUT = do_POST

    def log_message(self, format, *args):
        pass
