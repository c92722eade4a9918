"""Gunicorn's gthread worker, closing its listening socket as soon as a graceful stop begins.

The stock worker stops accepting on SIGTERM but keeps its copy of the listening socket open until it
exits, after in-flight requests and the kept-alive connections' linger. Meanwhile the kernel still
completes handshakes into a backlog nobody accepts, and the close at exit resets all of them: the
client cannot tell such a request from one lost while being served. This worker accepts (and
serves) whatever is already queued, then closes its copy at once; with the master's copy already
closed, later connections are refused, which a client knows to be safe to retry.
"""

from __future__ import annotations

from gunicorn.workers.gthread import TConn, ThreadWorker


class DrainingThreadWorker(ThreadWorker):
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
                client.setblocking(True)
                self.enqueue_req(TConn(self.cfg, client, address, listener.getsockname()))
            listener.close()
