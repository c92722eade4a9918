"""smotra.postgresql: a kept connection is checked without a round trip, and replaced when it went bad."""

from __future__ import annotations

import time
from unittest import mock

import psycopg
import pytest
from django.db import connection, connections

from tests import server

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend's health check"),
]


def new_request() -> None:
    """What Django does around a request: the end of the last one, then the first query's check."""
    connection.close_if_unusable_or_obsolete()


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_healthy_kept_connection_is_reused_without_a_select_1():
    first = backend_pid()
    with mock.patch.object(type(connections["default"]), "is_usable", autospec=True, return_value=True) as checked:
        for _ in range(3):
            new_request()
            assert backend_pid() == first
    assert checked.call_count == 0


def test_a_connection_the_server_terminated_while_idle_is_replaced_before_the_next_query():
    first = backend_pid()
    with psycopg.connect(server.test_database_url().replace("postgres://", "postgresql://"), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [first])
    time.sleep(0.2)  # the FATAL message and the close reach our socket
    new_request()
    assert backend_pid() != first  # a new connection, and no error for this "request"


def test_the_real_check_runs_when_the_server_sent_something():
    backend_pid()
    with psycopg.connect(server.test_database_url().replace("postgres://", "postgresql://"), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    time.sleep(0.2)
    with mock.patch.object(type(connections["default"]), "is_usable", autospec=True, return_value=False) as checked:
        new_request()
        backend_pid()
    assert checked.call_count == 1
