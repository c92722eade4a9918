"""Benchmark of the agent hot paths against the real server (`manage.py serve`, gunicorn).

    .venv/bin/python bench/run.py [--db sqlite|postgres|both] [--agents 50] [--seconds 10]

For each database it starts the server on a free port with a fresh database, onboards N agents
through the real API (register, claim, poll for the key), then drives 8 closed-loop keep-alive
clients per scenario (wrk where installed, for the scenarios that may replay a fixed list of requests;
bench/loadgen.py otherwise) and prints throughput, p50/p99 latency and the server's CPU time per request.
PostgreSQL: a throwaway database on $BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import Request, percentile, run_load
from wrkload import WRK, run_wrk

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Api:
    def __init__(self, base: str):
        self.base = base
        self.token = None

    def call(self, method: str, path: str, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def process_tree_cpu(root_pid: int) -> float:
    """utime + stime (seconds) of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        stats[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    total, stack = 0.0, [root_pid]
    while stack:
        pid = stack.pop()
        total += stats.get(pid, 0.0)
        stack += children.get(pid, [])
    return total


class Server:
    def __init__(self, env: dict, workers: int | None):
        self.port = free_port()
        self.env = {**os.environ, **env, "SMOTRA_HOST": "127.0.0.1", "SMOTRA_PORT": str(self.port)}
        if workers:
            self.env["SMOTRA_WORKERS"] = str(workers)
        self.log = tempfile.NamedTemporaryFile(prefix="smotra-bench-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = None

    def __enter__(self):
        self.process = subprocess.Popen(
            [PYTHON, str(ROOT / "manage.py"), "serve"], cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz/ready", timeout=1)
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(Path(self.log.name).read_text()) from None
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)

    def manage(self, *args: str, extra_env: dict | None = None):
        subprocess.run(
            [PYTHON, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env={**self.env, **(extra_env or {})},
            check=True,
            capture_output=True,
        )


def setup_fleet(server: Server, agents: int) -> tuple[list[tuple[str, str]], list[str]]:
    """A superuser, a tenant/section/topology, and N claimed agents with keys; endpoints to report on."""
    password = secrets.token_urlsafe(16)
    server.manage(
        "createsuperuser",
        "--noinput",
        "--username",
        "bench",
        "--email",
        "b@example.com",
        extra_env={"DJANGO_SUPERUSER_PASSWORD": password},
    )
    api = Api(f"http://127.0.0.1:{server.port}/api/v1")
    api.token = api.call("POST", "/auth/token", {"username": "bench", "password": password})[1]["access_token"]
    tenant = api.call("POST", "/tenants", {"name": "bench"})[1]["id"]
    section = api.call("POST", "/sections", {"tenant_id": tenant, "name": "bench"})[1]["id"]
    monitor = api.call("POST", "/tags", {"section_id": section, "name": "monitors", "scope": "agent"})[1]["id"]
    target = api.call("POST", "/tags", {"section_id": section, "name": "targets", "scope": "endpoint"})[1]["id"]
    endpoints = [
        api.call(
            "POST",
            "/endpoints",
            {"section_id": section, "address": f"10.0.{i // 250}.{i % 250 + 1}", "tag_ids": [target]},
        )[1]["id"]
        for i in range(20)
    ]
    api.call(
        "POST",
        "/topologies",
        {
            "section_id": section,
            "name": "mesh",
            "type": "full-mesh",
            "monitor_tag_ids": [monitor],
            "target_tag_ids": [target],
        },
    )
    fleet = []
    agent_api = Api(f"http://127.0.0.1:{server.port}/v1")
    for index in range(agents):
        agent_id, token = str(uuid.uuid4()), secrets.token_hex(32)
        body = {
            "agentId": agent_id,
            "claimTokenHash": hashlib.sha256(token.encode()).hexdigest(),
            "hostname": f"bench-{index}",
            "agentVersion": "bench",
            "ipAddresses": [
                {"ip": f"192.0.2.{index % 250 + 1}", "iface": "eth0", "family": "ipv4", "recommended": True}
            ],
        }
        assert agent_api.call("POST", "/agent/register", body)[0] == 201
        assert (
            api.call("POST", "/agents/claim", {"agentId": agent_id, "claimToken": token, "sectionId": section})[0]
            == 200
        )
        key = agent_api.call("GET", f"/agent/{agent_id}/claim-status")[1]["apiKey"]
        api.call("PATCH", f"/agents/{agent_id}", {"tag_ids": [monitor]})
        fleet.append((agent_id, key))
    return fleet, endpoints


def scenarios(fleet, endpoints, batch: int, versions: dict):
    def heartbeat(i):
        agent_id, key = fleet[i % len(fleet)]
        body = {
            "timestamp": "2026-11-26T12:00:00.123456789Z",
            "health_status": "healthy",
            "metrics": {
                "agent_uptime_secs": 100,
                "cpu_usage_percent": 3.5,
                "memory_usage_mb": 50.0,
                "memory_total_mb": 2048.0,
                "system_uptime_secs": 1000,
            },
            "agent_status": {
                "agent_version": "bench",
                "config_version": 1,
                "is_running": True,
                "checks_performed": i,
                "checks_successful": i,
                "checks_failed": 0,
                "started_at": "2026-11-26T11:00:00Z",
                "stopped_at": None,
                "reported_at": None,
                "failed_report_count": 0,
                "server_connected": True,
                "cache_stats": {"len": 0, "capacity": 10000},
            },
        }
        return Request(
            "POST",
            f"/v1/agent/{agent_id}/heartbeat",
            {"X-Agent-API-Key": key, "Content-Type": "application/json"},
            json.dumps(body).encode(),
        )

    def config_200(i):
        agent_id, key = fleet[i % len(fleet)]
        return Request("GET", f"/v1/agent/{agent_id}/configuration", {"X-Agent-API-Key": key})

    def config_304(i):
        agent_id, key = fleet[i % len(fleet)]
        return Request(
            "GET",
            f"/v1/agent/{agent_id}/configuration",
            {"X-Agent-API-Key": key, "If-None-Match": f'"{versions[agent_id]}"'},
        )

    def results(i):
        agent_id, key = fleet[i % len(fleet)]
        items = [
            {
                "id": str(uuid.uuid4()),
                "agent_id": agent_id,
                "endpoint_id": endpoints[j % len(endpoints)],
                "timestamp": "2026-11-26T12:00:00Z",
                "check_type": {
                    "type": "ping",
                    "result": {
                        "resolved_ip": "10.0.0.1",
                        "successes": 3,
                        "failures": 0,
                        "success_latencies": [1.1, 1.2, 1.3],
                        "error_details": None,
                    },
                },
            }
            for j in range(batch)
        ]
        return Request(
            "POST",
            f"/v1/agent/{agent_id}/results",
            {"X-Agent-API-Key": key, "Content-Type": "application/json"},
            json.dumps({"results": items}).encode(),
        )

    # (label, request maker, items per request, whether a fixed list of requests may be replayed)
    return [
        ("heartbeats", heartbeat, 1, True),
        ("configuration (200)", config_200, 1, True),
        ("configuration (304)", config_304, 1, True),
        (f"results ({batch}/batch)", results, batch, False),
    ]


def bench_database(name: str, env: dict, args) -> list[dict]:
    rows = []
    with Server(env, args.workers) as server:
        fleet, endpoints = setup_fleet(server, args.agents)
        api = Api(f"http://127.0.0.1:{server.port}/v1")
        versions = {}
        for agent_id, key in fleet:
            versions[agent_id] = api.call("GET", f"/agent/{agent_id}/configuration", headers={"X-Agent-API-Key": key})[
                1
            ]["version"]
        for label, make, items_per_request, replayable in scenarios(fleet, endpoints, args.batch, versions):
            use_wrk = replayable and args.client == "wrk"
            run_load("127.0.0.1", server.port, make, clients=args.clients, seconds=1)  # warm-up
            cpu_before = process_tree_cpu(server.process.pid)
            if use_wrk:
                fixed = [make(i) for i in range(len(fleet))]
                outcome, p50, p99 = run_wrk(server.port, fixed, clients=args.clients, seconds=args.seconds)
            else:
                outcome = run_load("127.0.0.1", server.port, make, clients=args.clients, seconds=args.seconds)
                p50, p99 = percentile(outcome.latencies, 0.50), percentile(outcome.latencies, 0.99)
            cpu = process_tree_cpu(server.process.pid) - cpu_before
            requests = len(outcome.latencies)
            rows.append(
                {
                    "database": name,
                    "scenario": label,
                    "requests": requests,
                    "per_second": requests * items_per_request / outcome.elapsed,
                    "unit": "items/s" if items_per_request > 1 else "req/s",
                    "p50_ms": p50 * 1000,
                    "p99_ms": p99 * 1000,
                    "client": "wrk" if use_wrk else "loadgen.py",
                    "cpu_ms_per_request": cpu / requests * 1000 if requests else float("nan"),
                    "statuses": outcome.statuses,
                    "errors": outcome.errors,
                }
            )
            print("  " + format_line(rows[-1]), flush=True)
    return rows


def postgres_env(base_url: str):
    import psycopg

    name = f"smotra_bench_{secrets.token_hex(4)}"
    with psycopg.connect(f"{base_url}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return {"DATABASE_URL": f"{base_url}/{name}"}, name


def drop_postgres(base_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{base_url}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def format_line(row: dict) -> str:
    return (
        f"{row['database']:8} {row['scenario']:22} {row['per_second']:10.0f} {row['unit']:7} "
        f"p50 {row['p50_ms']:6.1f} ms  p99 {row['p99_ms']:6.1f} ms  cpu {row['cpu_ms_per_request']:5.2f} ms/req"
    )


def print_table(rows: list[dict]) -> None:
    print("\n| database | scenario | client | throughput | p50 ms | p99 ms | server CPU ms/request | answers |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    for row in rows:
        answers = str(row["statuses"]) + (f" errors {row['errors']}" if row["errors"] else "")
        throughput = f"{row['per_second']:,.0f} {row['unit']}"
        timing = f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['cpu_ms_per_request']:.2f}"
        print(f"| {row['database']} | {row['scenario']} | {row['client']} | {throughput} | {timing} | {answers} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: the server's default)")
    parser.add_argument(
        "--client",
        choices=["wrk", "python"],
        default="wrk" if WRK else "python",
        help="load from wrk where a fixed list of requests may be replayed (default when installed), "
        "else bench/loadgen.py",
    )
    args = parser.parse_args()
    base_env = {
        "SMOTRA_LOG_LEVEL": os.environ.get("SMOTRA_LOG_LEVEL", "warn"),
        "SMOTRA_REGISTRATION_RATE_LIMIT": "100000",
    }
    for variable in ("SMOTRA_CONFIG", "CONFIG_FILE", "DATABASE_URL"):
        os.environ.pop(variable, None)
    rows = []
    print(
        f"Smotra benchmark: {args.agents} agents, {args.clients} keep-alive clients, "
        f"{args.seconds:g} s per scenario, {os.cpu_count()} cores"
    )
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="smotra-bench-") as directory:
            rows += bench_database("sqlite", {**base_env, "SMOTRA_SQLITE_PATH": f"{directory}/bench.db"}, args)
    if args.db in ("postgres", "both"):
        base_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
        env, name = postgres_env(base_url)
        try:
            rows += bench_database("postgres", {**base_env, **env}, args)
        finally:
            drop_postgres(base_url, name)
    print_table(rows)


if __name__ == "__main__":
    main()
