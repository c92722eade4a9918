"""/metrics under gunicorn: counters are aggregated across worker processes (multiprocess mode)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.server import ServerProcess, start_server

pytestmark = pytest.mark.server

REQUESTS = 40
MAX_REQUESTS = 200  # keep sending until both workers served some, to prove aggregation
SCRAPES = 10
COUNTER = "django_http_requests_total_by_view_transport_method_total"
LIVE_LABELS = {"method": "GET", "transport": "http", "view": "healthz-live"}


@pytest.fixture
def two_worker_server(transactional_db, tmp_path):
    # serve creates its metrics directory under TMPDIR: pointing TMPDIR here lets the test look inside.
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  drain_delay: 0s\n")  # nothing to drain: stop at once
    env = {"SMOTRA_WORKERS": "2", "SMOTRA_THREADS": "1", "TMPDIR": str(runtime)}
    server = start_server(tmp_path, env=env, args=["--config", str(config)])
    server.runtime = runtime
    yield server
    assert server.stop() == 0


def scraped_count(server: ServerProcess) -> float:
    response = server.request("GET", "/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            if sample.name == COUNTER and sample.labels == LIVE_LABELS:
                return sample.value
    return 0.0


def per_worker_counts(metrics_dir: Path, scratch: Path) -> dict[int, float]:
    """Each worker's own count, read from only that worker's counter file."""
    counts = {}
    for file in sorted(metrics_dir.glob("counter_*.db")):
        pid = int(file.stem.split("_")[1])
        single = scratch / str(pid)
        single.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, single / file.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(single))
        counts[pid] = registry.get_sample_value(COUNTER, LIVE_LABELS) or 0.0
    return counts


def send(server: ServerProcess, count: int) -> None:
    for _ in range(count):
        assert server.request("GET", "/healthz/live").status == 200  # urllib: a new connection each time


def test_it_aggregates_counters_across_worker_processes(two_worker_server, tmp_path):
    server = two_worker_server
    expected = scraped_count(server) + REQUESTS  # start_server's readiness probes count too
    send(server, REQUESTS)
    [metrics_dir] = server.runtime.glob("smotra-serve-*/metrics")
    counts = per_worker_counts(metrics_dir, tmp_path / "scratch-0")
    for attempt in range((MAX_REQUESTS - REQUESTS) // 10):
        if all(counts.values()):
            break
        send(server, 10)
        expected += 10
        counts = per_worker_counts(metrics_dir, tmp_path / f"scratch-{attempt + 1}")

    booted = {int(pid) for pid in _booted_worker_pids(server.log())}
    assert len(booted) == 2
    assert set(counts) == booted
    assert sum(counts.values()) == expected
    assert all(0 < count < expected for count in counts.values()), f"one worker served everything: {counts}"
    for _ in range(SCRAPES):
        assert scraped_count(server) == expected


def _booted_worker_pids(log: str) -> list[str]:
    marker = "Booting worker with pid: "
    return [line.split(marker, 1)[1].split('"', 1)[0].strip() for line in log.splitlines() if marker in line]
