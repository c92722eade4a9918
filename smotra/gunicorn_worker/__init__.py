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

from smotra.gunicorn_worker.worker import DrainingThreadWorker

__all__ = ["DrainingThreadWorker"]
