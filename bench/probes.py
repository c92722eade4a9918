"""How a server behaves where throughput does not show: slow clients, a stop, multiprocess metrics.

    .venv/bin/python bench/probes.py [--server gunicorn|granian|both]

Each probe starts the server (bench/servers.py, SQLite, bench.settings) and prints what it saw:

- **slow head / slow body** (1 worker x 1 thread): two clients send a request a byte every 50 ms
  (the head; or a complete head and then the body), and meanwhile a normal ``GET /healthz/live``
  is timed. Answered at once: the slow clients hold no application thread. Answered only after
  they finish: they do.
- **drain** (1 worker x 2 threads): ``GET /bench/sleep?seconds=4`` is in flight when the server's
  main process gets SIGTERM (`serve`'s supervisor; granian itself). Does it finish with 200? What
  do new requests get meanwhile, and when does the process exit?
- **metrics** (3 workers): 60 ``GET /healthz/live`` on new connections, then 6 scrapes of
  ``/metrics``: with multiprocess aggregation every scrape counts all 60, whichever worker answers.
- **stops** (3 workers, 6 times): start, 60 requests and 6 scrapes, SIGTERM to the main process: how
  long until it exits? A stop still running after 20 s counts as hung; its workers then get SIGTERM
  themselves. (granian 2.8.9 hung so in 2 of 19 tries while this was written: a worker kept serving,
  the main process waited for it without end, as it does without --workers-kill-timeout.)"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import SERVERS, make_server

TRICKLE = 0.05  # seconds between two bytes from a slow client (a head or a body: ~5 s)


def _get(port: int, path: str, timeout: float = 10.0) -> tuple[str, float]:
    """('200', seconds) or ('refused' / an error name, seconds) of one request on a new connection."""
    started = time.monotonic()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        connection.request("GET", path)
        status = str(connection.getresponse().status)
        connection.close()
    except ConnectionRefusedError:
        status = "refused"
    except (OSError, http.client.HTTPException) as error:
        status = type(error).__name__
    return status, time.monotonic() - started


def _trickle(port: int, head: bytes, body: bytes, slow_head: bool, outcome: list) -> None:
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            slow, fast = (head + body, b"") if slow_head else (body, head)
            sock.sendall(fast)
            for byte in slow:
                sock.sendall(bytes([byte]))
                time.sleep(TRICKLE)
            answer = sock.recv(200).split(b"\r\n", 1)[0].decode()
    except OSError as error:
        answer = type(error).__name__
    outcome.append((answer, time.monotonic() - started))


def probe_slow(kind: str, env: dict, slow_head: bool) -> str:
    with make_server(kind, {**env, "SMOTRA_THREADS": "1"}, 1) as server:
        body = b'{"slow": "' + b"x" * 88 + b'"}'
        head = (
            f"POST /bench/baseline HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        outcomes: list = []
        slow = [
            threading.Thread(target=_trickle, args=(server.port, head, body, slow_head, outcomes)) for _ in range(2)
        ]
        for thread in slow:
            thread.start()
        time.sleep(1.0)
        status, seconds = _get(server.port, "/healthz/live", timeout=30)
        for thread in slow:
            thread.join()
    trickled = (len(head) + len(body) if slow_head else len(body)) * TRICKLE
    held = "HELD a thread" if seconds > 0.5 else "held no thread"
    return (
        f"slow {'head' if slow_head else 'body'} (2 clients, {trickled:.1f} s each): normal request {status} in "
        f"{seconds:.2f} s -> {held}; slow clients got {outcomes}"
    )


def probe_drain(kind: str, env: dict) -> str:
    server = make_server(kind, {**env, "SMOTRA_THREADS": "2"}, 1)
    with server:
        in_flight: list = []
        sleeper = threading.Thread(target=lambda: in_flight.append(_get(server.port, "/bench/sleep?seconds=4", 30)))
        sleeper.start()
        time.sleep(0.5)
        stopped = time.monotonic()
        server.processes[0].send_signal(signal.SIGTERM)
        meanwhile = []
        for delay in (0.5, 1.5, 3.5):
            time.sleep(max(0.0, stopped + delay - time.monotonic()))
            ready, _ = _get(server.port, "/healthz/ready", timeout=5)
            live, _ = _get(server.port, "/healthz/live", timeout=5)
            meanwhile.append(f"+{delay:g} s ready {ready} live {live}")
        sleeper.join()
        code = server.processes[0].wait(timeout=60)
        exited = time.monotonic() - stopped
    status, seconds = in_flight[0]
    return (
        f"drain: SIGTERM 0.5 s into a 4 s request -> it answered {status} after {seconds:.1f} s; "
        f"{'; '.join(meanwhile)}; main process exited {code} {exited:.1f} s after the signal"
    )


def probe_metrics(kind: str, env: dict) -> str:
    with make_server(kind, env, 3) as server:
        for _ in range(60):
            _get(server.port, "/healthz/live")
        totals = []
        for _ in range(6):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("GET", "/metrics")
            text = connection.getresponse().read().decode()
            connection.close()
            totals.append(_live_requests(text))
    return f"metrics (3 workers): 60 GET /healthz/live, then 6 scrapes of /metrics counted {totals}"


def probe_stops(kind: str, env: dict, times: int = 6) -> str:
    seconds, hung = [], 0
    for _ in range(times):
        with make_server(kind, env, 3) as server:
            for path in ["/healthz/live"] * 60 + ["/metrics"] * 6:  # as the metrics probe, after which one hung
                _get(server.port, path)
            main = server.processes[0]
            workers = _descendants(main.pid)
            stopped = time.monotonic()
            main.send_signal(signal.SIGTERM)
            try:
                main.wait(timeout=20)
                seconds.append(round(time.monotonic() - stopped, 1))
            except subprocess.TimeoutExpired:
                hung += 1
                for pid in workers:  # ours: the descendants of the server we started
                    if Path(f"/proc/{pid}").exists():
                        os.kill(pid, signal.SIGTERM)
    return f"stops (3 workers): {times} SIGTERMs, exited after {seconds} s, {hung} hung for over 20 s"


def _descendants(pid: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in children] + [d for child in children for d in _descendants(int(child))]


def _live_requests(text: str) -> int:
    name = "django_http_responses_total_by_status_view_method_total"
    pattern = re.compile(name + r'\{[^}]*view="healthz-live"[^}]*\} (\S+)')
    return int(sum(float(match.group(1)) for line in text.splitlines() if (match := pattern.match(line))))


PROBES = (
    (probe_slow, {"slow_head": True}),
    (probe_slow, {"slow_head": False}),
    (probe_drain, {}),
    (probe_metrics, {}),
    (probe_stops, {}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=[*SERVERS, "both"], default="both")
    args = parser.parse_args()
    for variable in ("SMOTRA_CONFIG", "CONFIG_FILE", "DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR"):
        os.environ.pop(variable, None)
    with tempfile.TemporaryDirectory(prefix="smotra-probes-") as directory:
        env = {
            "SMOTRA_LOG_LEVEL": "warn",
            "SMOTRA_SQLITE_PATH": f"{directory}/probes.db",
            "DJANGO_SETTINGS_MODULE": "bench.settings",
        }
        for kind in SERVERS if args.server == "both" else (args.server,):
            print(f"{kind}:", flush=True)
            make_server(kind, env, 1).manage("shell", "-c", "from bench.baseline import create_table; create_table()")
            for probe, options in PROBES:
                print(f"  {probe(kind, env, **options)}", flush=True)


if __name__ == "__main__":
    main()
