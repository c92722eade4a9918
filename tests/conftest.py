"""Shared fixtures: API clients, users with roles, and the real server in a subprocess."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.server import start_server


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def server(transactional_db, tmp_path):
    """The real server (gunicorn, 2 workers) on a free port, sharing the test database."""
    process = start_server(tmp_path)
    yield process
    process.stop()
