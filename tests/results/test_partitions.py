"""PostgreSQL: raw results partitioned by day of their UUIDv7 ids (results/partitions.py, migration 0008)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.utils import timezone

from results.models import CheckResult
from results.partitions import (
    DEFAULT,
    TABLE,
    Partition,
    day_partitions,
    partitions_ensure,
    results_prune,
    uuid7_floor,
)
from tests.factories import EndpointFactory
from tests.results import agent_with_key, key_header, result_item

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="results are partitioned on PostgreSQL only"),
]


def uuid7_at(moment: datetime) -> uuid.UUID:
    """A UUIDv7 made at ``moment``, as an agent whose clock says ``moment`` makes it."""
    bits = uuid7_floor(moment).int | (0x7 << 76) | (random.getrandbits(12) << 64) | (0b10 << 62)
    return uuid.UUID(int=bits | random.getrandbits(62))


def table_of(result_id) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {TABLE} WHERE id = %s", [str(result_id)])
        row = cursor.fetchone()
    return row and row[0]


def exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def drop(*days) -> None:
    with connection.cursor() as cursor:
        for day in days:
            cursor.execute(f"DROP TABLE IF EXISTS {Partition(day).name}")


def today():
    return timezone.now().astimezone(UTC).date()


def post(api_client, agent, items):
    response = api_client.post(f"/v1/agent/{agent.pk}/results", {"results": items}, format="json", **key_header())
    assert response.status_code == 202, response.content
    return response.json()


@pytest.fixture
def field(section_a):
    return agent_with_key(section_a), EndpointFactory(section=section_a)


def test_migrate_leaves_the_results_partitioned_with_a_partition_per_day_ahead():
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        assert cursor.fetchone()[0] == "p"
    assert exists(DEFAULT)
    for ahead in range(8):
        assert exists(Partition(today() + timedelta(days=ahead)).name)
    assert partitions_ensure() == []  # nothing missing: idempotent


def test_the_worker_creates_missing_partitions_ahead():
    tomorrow = today() + timedelta(days=1)
    drop(tomorrow)
    call_command("run_alerts", "--once", stdout=StringIO())
    assert exists(Partition(tomorrow).name)


def test_each_result_lands_in_the_partition_of_its_ids_day_and_is_stored_once(api_client, field):
    agent, endpoint = field
    now = timezone.now()
    fresh = result_item(agent.pk, endpoint.pk, "tcpconnect", id=str(uuid7_at(now)))
    yesterday = result_item(agent.pk, endpoint.pk, "tcpconnect", id=str(uuid7_at(now - timedelta(days=1))))
    random_v4 = result_item(agent.pk, endpoint.pk, "tcpconnect", id=str(uuid.uuid4()))  # not a v7: still stored
    assert post(api_client, agent, [fresh, yesterday, random_v4])["accepted"] == 3
    assert table_of(fresh["id"]) == Partition(now.astimezone(UTC).date()).name
    assert table_of(yesterday["id"]) == Partition((now - timedelta(days=1)).astimezone(UTC).date()).name
    assert table_of(random_v4["id"]) == DEFAULT  # its first 48 bits are random: almost surely no day's
    resent = post(api_client, agent, [fresh, yesterday, random_v4])
    assert (resent["accepted"], resent["duplicates_skipped"]) == (0, 3)
    assert CheckResult.objects.count() == 3


def test_a_partition_made_later_takes_its_rows_over_from_the_default_partition(api_client, field):
    agent, endpoint = field
    day = today() + timedelta(days=40)  # an agent's clock far ahead: no partition for that day yet
    assert not exists(Partition(day).name)
    early = result_item(
        agent.pk, endpoint.pk, "tcpconnect", id=str(uuid7_at(Partition(day).start + timedelta(hours=3)))
    )
    assert post(api_client, agent, [early])["accepted"] == 1
    assert table_of(early["id"]) == DEFAULT
    try:
        assert partitions_ensure(since=day, until=day) == [Partition(day).name]
        assert table_of(early["id"]) == Partition(day).name
        assert CheckResult.objects.filter(pk=early["id"]).count() == 1
        assert post(api_client, agent, [early])["duplicates_skipped"] == 1  # the key holds across the move
    finally:
        drop(day)


def _result(agent, endpoint, made: datetime, checked: datetime) -> CheckResult:
    return CheckResult(
        id=uuid7_at(made),
        agent=agent,
        endpoint_id=endpoint.pk,
        check_type="tcpconnect",
        success=True,
        checked_at=checked,
        received_at=checked,
        latency_ms=1.0,
        details={},
    )


def test_prune_drops_expired_day_partitions_whole_and_deletes_only_expired_rows_elsewhere(field):
    agent, endpoint = field
    now = timezone.now()
    cutoff = now - timedelta(days=30)  # results.retention's default
    old, odd = today() - timedelta(days=40), today() - timedelta(days=39)
    straddling = Partition(cutoff.astimezone(UTC).date())
    partitions_ensure(since=old, until=odd)
    at_old = Partition(old).start + timedelta(hours=1)
    within = straddling.start + (cutoff - straddling.start) / 2  # past the cutoff, in its day
    rows = {
        "old": [_result(agent, endpoint, at_old, at_old) for _ in range(3)],
        "odd expired": [_result(agent, endpoint, Partition(odd).start, Partition(odd).start)],
        "odd recent": [_result(agent, endpoint, Partition(odd).start, now)],  # id and timestamp disagree
        "straddling": [_result(agent, endpoint, within, within)],
        "today but expired": [_result(agent, endpoint, now, now - timedelta(days=35))],
        "today": [_result(agent, endpoint, now, now)],
    }
    default_row = _result(agent, endpoint, now, now - timedelta(days=35))
    default_row.id = uuid.UUID(int=(1 << 127) | random.getrandbits(100))  # far outside every day: default
    CheckResult.objects.bulk_create([row for group in rows.values() for row in group] + [default_row])
    assert table_of(default_row.id) == DEFAULT
    with connection.cursor() as cursor:  # the agent FK's deferred checks, as a commit would run them
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    expired = [partition for partition in day_partitions() if partition.end <= cutoff]  # old's, odd's, ...
    out = StringIO()
    call_command("prune_results", "--chunk", "1", stdout=out)

    assert "Deleted 6 result(s)" in out.getvalue()  # 3 with their partition, 1 odd, 1 today's, 1 default
    assert f"Result partitions: {len(expired) - 1} dropped, 1 expired but kept" in out.getvalue()
    assert [partition.day for partition in day_partitions() if partition.end <= cutoff] == [odd]
    assert not exists(Partition(old).name)
    assert exists(Partition(odd).name)  # a recent timestamp keeps it
    remaining = set(CheckResult.objects.values_list("pk", flat=True))
    assert remaining == {row.id for key in ("odd recent", "straddling", "today") for row in rows[key]}
    drop(odd)


@pytest.mark.django_db(transaction=True)
def test_concurrent_ensures_create_each_partition_once():
    days = [today() + timedelta(days=n) for n in range(50, 54)]
    created, errors = [], []

    def ensure():
        try:
            created.extend(partitions_ensure(since=days[0], until=days[-1]))
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ensure) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(created) == [Partition(day).name for day in days]
    finally:
        drop(*days)


def _waiting_on(table: str) -> int:
    """How many lock requests on ``table`` wait, in other sessions."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = to_regclass(%s)", [table])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_partition_drops_while_a_reader_holds_the_parent_and_the_reader_is_not_a_deadlock_victim(section_a):
    """A query over the results locks the parent, then each partition it reads. The drop waits for
    that reader to finish (DETACH needs the parent); the reader, meanwhile, must still be able to
    read the partition being dropped: the drop holds it in SHARE mode, not exclusively (which
    made the reader and the drop wait on each other, and PostgreSQL killed one of them)."""
    agent, endpoint = agent_with_key(section_a), EndpointFactory(section=section_a)
    old = today() - timedelta(days=45)
    partitions_ensure(since=old, until=old)
    made = Partition(old).start + timedelta(hours=2)
    CheckResult.objects.bulk_create([_result(agent, endpoint, made, made) for _ in range(3)])
    name = Partition(old).name
    read, pruned, errors = [], [], []
    holding, done = threading.Event(), threading.Event()

    def reader():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE ONLY {TABLE} IN ACCESS SHARE MODE")  # as a query's plan does
                holding.set()
                for _ in range(500):  # until the drop waits for the parent (at most 5 s)
                    if _waiting_on(TABLE):
                        break
                    time.sleep(0.01)
                cursor.execute(f"SELECT count(*) FROM {name}")
                read.append(cursor.fetchone()[0])
        except Exception as exc:
            errors.append(exc)
        finally:
            done.set()
            connections.close_all()

    def prune():
        try:
            holding.wait(5)
            pruned.append(results_prune(timezone.now() - timedelta(days=30), 1000))
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reader), threading.Thread(target=prune)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        assert read == [3]
        assert pruned[0].partitions >= 1 and pruned[0].results >= 3
        assert not exists(name)
    finally:
        drop(old)


@pytest.mark.django_db(transaction=True)
def test_the_migration_converts_existing_rows_both_ways(section_a):
    agent, endpoint = agent_with_key(section_a), EndpointFactory(section=section_a)
    now = timezone.now()
    kept = [_result(agent, endpoint, now - timedelta(days=age), now) for age in (0, 3)]
    CheckResult.objects.bulk_create([*kept, _result(agent, endpoint, now, now)])
    kept.append(CheckResult.objects.exclude(pk__in=[row.pk for row in kept]).get())
    ids = {row.pk for row in kept}
    try:
        call_command("migrate", "results", "0007", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
            assert cursor.fetchone()[0] == "r"
        assert set(CheckResult.objects.values_list("pk", flat=True)) == ids
    finally:
        call_command("migrate", "results", verbosity=0)
    assert set(CheckResult.objects.values_list("pk", flat=True)) == ids
    assert table_of(kept[1].pk) == Partition((now - timedelta(days=3)).astimezone(UTC).date()).name
    assert CheckResult.objects.get(pk=kept[0].pk).latency_ms == 1.0
