"""Closed-loop keep-alive load from wrk (Debian's package): the same scenarios as bench/loadgen.py,
from a client written in C, so that on a machine whose two cores the server shares the load
generator takes little of them (loadgen.py, in Python, took about as much CPU as the server).

wrk replays a fixed list of requests round-robin (one per agent, say): fine for heartbeats and
configuration GETs, not for result batches, whose ids must be new to be stored."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from loadgen import Outcome, Request

WRK = shutil.which("wrk")

_SCRIPT = """
local requests = {}
%(requests)s
local counter = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  counter = math.random(1, #requests)
end

function request()
  counter = counter + 1
  return requests[(counter %% #requests) + 1]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests_done)
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      io.write(string.format("status %%d %%d\\n", status, count))
    end
  end
  local errors = summary.errors
  io.write(string.format("requests %%d\\n", summary.requests))
  io.write(string.format("duration_us %%d\\n", summary.duration))
  io.write(string.format("errors %%d\\n", errors.connect + errors.read + errors.write + errors.timeout))
  io.write(string.format("p50_us %%d\\np99_us %%d\\n", latency:percentile(50), latency:percentile(99)))
end
"""


def _lua_string(text: str) -> str:
    assert "]==]" not in text
    return f"[==[{text}]==]"  # a long string: quotes (an ETag's) and backslashes are as they are


def _lua(request: Request) -> str:
    headers = ", ".join(f"[ {_lua_string(name)} ] = {_lua_string(value)}" for name, value in request.headers.items())
    body = _lua_string(request.body.decode()) if request.body else "nil"
    method, path = _lua_string(request.method), _lua_string(request.path)
    return f"table.insert(requests, wrk.format({method}, {path}, {{{headers}}}, {body}))"


def run_wrk(port: int, requests: list[Request], *, clients: int, seconds: float) -> tuple[Outcome, float, float]:
    """(the outcome, p50 and p99 in seconds) of ``clients`` connections over two threads."""
    # The requests are formatted when the script loads, before wrk knows the host: without this,
    # wrk.format() sends HTTP/1.1 requests with no Host header (which granian passes on as an empty
    # HTTP_HOST, a 400 from Django; gunicorn leaves it out and Django falls back to SERVER_NAME).
    host = {"Host": f"127.0.0.1:{port}"}
    script = _SCRIPT % {"requests": "\n".join(_lua(replace(r, headers={**host, **r.headers})) for r in requests)}
    with tempfile.TemporaryDirectory(prefix="smotra-wrk-") as directory:
        path = Path(directory) / "load.lua"
        path.write_text(script)
        command = [WRK, "-t2", f"-c{clients}", f"-d{max(1, round(seconds))}s", "-s", str(path)]
        output = subprocess.run([*command, f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True)
        if os.environ.get("BENCH_DEBUG"):
            print(output.stdout, output.stderr)
    values, outcome = {}, Outcome()
    for line in output.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "status":
            outcome.statuses[int(parts[1])] = outcome.statuses.get(int(parts[1]), 0) + int(parts[2])
        elif len(parts) == 2 and parts[0] in ("requests", "duration_us", "errors", "p50_us", "p99_us"):
            values[parts[0]] = int(parts[1])
    if "requests" not in values:  # the script failed, and wrk loaded / instead: no measure
        raise RuntimeError(f"wrk did not run the scenario: {output.stderr.strip()[:500]}")
    outcome.errors = values["errors"]
    outcome.elapsed = values["duration_us"] / 1e6
    outcome.latencies = [0.0] * values["requests"]  # counted only; wrk gives the percentiles
    return outcome, values["p50_us"] / 1e6, values["p99_us"] / 1e6
