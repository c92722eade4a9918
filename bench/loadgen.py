"""A small asyncio HTTP/1.1 keep-alive load generator (stdlib only).

Each client keeps one connection open and sends its next request when the previous answer is in
(closed loop), so "8 concurrent keep-alive clients" means at most 8 requests in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    path: str
    headers: dict = field(default_factory=dict)
    body: bytes = b""

    def encode(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    elapsed: float = 0.0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _client(host, port, make_request: Callable[[int], Request], deadline: float, outcome: Outcome, seq):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            payload = make_request(next(seq)).encode(f"{host}:{port}")
            started = time.perf_counter()
            writer.write(payload)
            try:
                status, _ = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                outcome.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            outcome.latencies.append(time.perf_counter() - started)
            outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
    finally:
        writer.close()


def run_load(host: str, port: int, make_request: Callable[[int], Request], *, clients: int, seconds: float) -> Outcome:
    """Drive ``clients`` closed-loop keep-alive connections for ``seconds``; collect latencies."""
    import itertools

    outcome = Outcome()
    seq = itertools.count()

    async def main():
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(_client(host, port, make_request, deadline, outcome, seq) for _ in range(clients)))
        outcome.elapsed = time.perf_counter() - started

    asyncio.run(main())
    return outcome


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
