"""Heartbeat group commit (``agent.heartbeat_group_commit``): concurrent heartbeats of one process
share one statement, each answered only after that statement committed, each with its own outcome.

First the protocol alone (plain threads, a fake write), then the real HTTP path on PostgreSQL: threads
with their own test client and connection. A first heartbeat, held in its write, keeps the leadership
until the heartbeats under test are all queued, so that they are written by one statement."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Agent
from results.models import Heartbeat
from results.services import vitals
from results.services.heartbeat_commit import GroupCommit
from tests.results import KEY, OTHER_KEY, agent_with_key, key_header
from tests.results.test_heartbeats import FLAT, NESTED

PILOT_KEY = "smk_test-key-of-the-pilot-000000000000000000000"


def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


# ---------------------------------------------------------------------------------------------
# The protocol, without a database


class FakeWrite:
    """A write that records its groups, checks that only one runs at a time, and can be held."""

    def __init__(self, outcome=lambda row: True, pause: float = 0.0):
        self.groups: list[list] = []
        self.outcome, self.pause = outcome, pause
        self.running = 0
        self.overlapped = False
        self.gate: threading.Event | None = None  # the first write waits for it

    def __call__(self, rows):
        self.running += 1
        self.overlapped |= self.running > 1
        try:
            self.groups.append(list(rows))
            if self.gate is not None and len(self.groups) == 1:
                assert self.gate.wait(10)
            time.sleep(self.pause)
            return [self.outcome(row) for row in rows]
        finally:
            self.running -= 1


def test_every_row_of_concurrent_callers_is_written_once_one_group_at_a_time():
    write = FakeWrite(outcome=lambda row: row % 3 != 0, pause=0.0005)
    committer = GroupCommit(write)
    answers = {}

    def caller(thread: int):
        for row in range(thread * 1000, thread * 1000 + 300):
            answers[row] = committer.submit(row)

    threads = [threading.Thread(target=caller, args=(thread,)) for thread in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    written = [row for group in write.groups for row in group]
    assert sorted(written) == sorted(answers) and len(answers) == 16 * 300
    assert answers == {row: row % 3 != 0 for row in answers}
    assert not write.overlapped
    assert max(map(len, write.groups)) > 1  # it did group
    assert committer.queued == 0


def test_a_failed_write_fails_every_caller_of_its_group_with_its_own_exception():
    failure = OperationalError("the database went away")

    def write(rows):
        if len(rows) > 1:
            raise failure
        return FakeWrite()(rows)

    holder = FakeWrite()
    holder.gate = threading.Event()
    committer = GroupCommit(lambda rows: holder(rows) if not holder.groups else write(rows))
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(committer.submit, "first")
        wait_until(lambda: holder.groups)
        rest = [pool.submit(committer.submit, f"row-{index}") for index in range(5)]
        wait_until(lambda: committer.queued == 5)
        holder.gate.set()
        errors = [future.exception(10) for future in rest]

    assert first.result() is True
    assert all(isinstance(error, OperationalError) for error in errors)
    assert len({id(error) for error in errors}) == 5  # each its own (one of them may be the original)
    assert all(error is failure or error.__cause__ is failure for error in errors)


def test_a_caller_stuck_behind_a_leader_gives_up_and_its_row_is_withdrawn():
    write = FakeWrite()
    write.gate = threading.Event()
    committer = GroupCommit(write, wait_seconds=0.2)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(committer.submit, "first")
        wait_until(lambda: write.groups)
        with pytest.raises(OperationalError, match=r"within 0\.2 s"):
            committer.submit("second")
        write.gate.set()
        assert first.result(10) is True

    assert committer.submit("third") is True  # the leadership was passed on, not lost
    assert write.groups == [["first"], ["third"]]


def test_a_lone_caller_writes_alone_at_once():
    write = FakeWrite()
    committer = GroupCommit(write)

    assert [committer.submit(row) for row in range(3)] == [True, True, True]
    assert write.groups == [[0], [1], [2]]


# ---------------------------------------------------------------------------------------------
# The HTTP path


class Recorder:
    """The process's committer for one test: records each group's size; ``before(rows)`` runs on
    the leader's thread just before its statement."""

    def __init__(self, wait_seconds: float = 10.0):
        self.sizes: list[int] = []
        self.before = None
        self.committer = GroupCommit(self._write, wait_seconds=wait_seconds)

    def _write(self, rows):
        self.sizes.append(len(rows))
        if self.before is not None:
            self.before(rows)
        return vitals.heartbeats_write(rows)


@pytest.fixture
def grouped(settings, monkeypatch):
    settings.SMOTRA = replace(settings.SMOTRA, agent=replace(settings.SMOTRA.agent, heartbeat_group_commit=True))
    recorder = Recorder()
    monkeypatch.setattr(vitals, "_GROUP", recorder.committer)
    return recorder


@pytest.fixture
def on_postgres(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has a single writer: heartbeats are never grouped there")


@pytest.fixture
def pilot(section_a):
    return agent_with_key(section_a, key=PILOT_KEY, name="pilot")


def post(agent_id, body, key: str):
    """One heartbeat from this thread (its own client and connection): the status, the error code,
    and for a 204 whether its row could already be read on this thread's own connection."""
    try:
        client = Client(raise_request_exception=False)
        response = client.post(
            f"/v1/agent/{agent_id}/heartbeat", data=body, content_type="application/json", **key_header(key)
        )
        code = response.json()["error"] if response.status_code != 204 else None
        marker = body.get("cpu_usage_percent", body.get("metrics", {}).get("cpu_usage_percent"))
        committed = Heartbeat.objects.filter(agent_id=agent_id, cpu_usage_percent=marker).exists()
        return response.status_code, code, committed
    finally:
        connection.close()


def one_group(recorder: Recorder, pilot, posts: list[tuple]) -> list[tuple]:
    """The answers to ``posts`` (agent id, body, key), all queued behind the pilot's heartbeat and
    so written by the one statement that follows it."""

    def hold_the_first(rows):
        if len(recorder.sizes) == 1:
            wait_until(lambda: recorder.committer.queued == len(posts))

    recorder.before = hold_the_first
    with ThreadPoolExecutor(len(posts) + 1) as pool:
        first = pool.submit(post, pilot.pk, flat(99.0), PILOT_KEY)
        wait_until(lambda: recorder.sizes)
        answers = list(pool.map(lambda args: post(*args), posts))
    assert first.result() == (204, None, True)
    assert recorder.sizes == [1, len(posts)]
    return answers


def flat(cpu: float) -> dict:
    return {**FLAT, "timestamp": None, "cpu_usage_percent": cpu}


def nested(cpu: float, version: str) -> dict:
    status = {**NESTED["agent_status"], "agent_version": version}
    return {**NESTED, "metrics": {**NESTED["metrics"], "cpu_usage_percent": cpu}, "agent_status": status}


def test_concurrent_heartbeats_are_stored_by_one_statement_and_answered_after_it_committed(
    on_postgres, grouped, section_a, pilot
):
    agents = [agent_with_key(section_a, key=f"smk_group-{index}", agent_version="1.0") for index in range(4)]
    posts = []
    for index, agent in enumerate(agents):  # two of each agent in the group: one carries a version
        posts += [(agent.pk, nested(index, f"2.{index}"), f"smk_group-{index}")]
        posts += [(agent.pk, flat(index + 0.5), f"smk_group-{index}")]

    answers = one_group(grouped, pilot, posts)

    assert answers == [(204, None, True)] * len(posts)  # each row readable elsewhere by its 204
    assert Heartbeat.objects.count() == len(posts) + 1
    for index, agent in enumerate(agents):
        fresh = Agent.objects.get(pk=agent.pk)
        assert fresh.agent_version == f"2.{index}"  # whichever of the two was queued last
        assert fresh.last_seen_at is not None
        assert Heartbeat.objects.filter(agent=agent).count() == 2


def test_each_heartbeat_of_a_group_gets_its_own_answer(on_postgres, grouped, section_a, section_b, pilot):
    agent = agent_with_key(section_a, name="probe")
    stranger = agent_with_key(section_b, key=OTHER_KEY, name="stranger")
    revoked = agent_with_key(section_a, key="smk_revoked", name="revoked", revoked_at=timezone.now())
    posts = [
        (agent.pk, flat(1.0), KEY),
        (revoked.pk, flat(2.0), "smk_revoked"),
        (agent.pk, flat(3.0), OTHER_KEY),  # another agent's key
        (stranger.pk, flat(4.0), OTHER_KEY),
        (agent.pk, flat(5.0), "smk_wrong"),
        (agent.pk, flat(6.0), KEY),
    ]

    answers = one_group(grouped, pilot, posts)

    assert [answer[:2] for answer in answers] == [
        (204, None),
        (401, "unauthorized"),
        (403, "forbidden"),
        (204, None),
        (401, "unauthorized"),
        (204, None),
    ]
    stored = sorted(Heartbeat.objects.exclude(agent=pilot).values_list("agent__name", "cpu_usage_percent"))
    assert stored == [("probe", 1.0), ("probe", 6.0), ("stranger", 4.0)]
    assert Agent.objects.get(pk=revoked.pk).last_seen_at is None


POISON = """
CREATE FUNCTION h3_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'poisoned heartbeat' USING ERRCODE = '{errcode}';
END $$;
CREATE TRIGGER h3_poison BEFORE INSERT ON results_heartbeat
    FOR EACH ROW WHEN (NEW.health_status = 'poison') EXECUTE FUNCTION h3_poison();
"""


@pytest.fixture
def poison_trigger():
    """``poison_trigger(errcode)``: inserting a heartbeat whose status is 'poison' fails the statement."""

    def install(errcode: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(POISON.format(errcode=errcode))

    yield install
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS h3_poison ON results_heartbeat; DROP FUNCTION IF EXISTS h3_poison()")


@pytest.mark.parametrize(
    ("errcode", "status", "code"),
    [("query_canceled", 503, "service_unavailable"), ("raise_exception", 500, "internal_error")],
)
def test_a_failed_group_statement_fails_every_heartbeat_of_the_group(
    on_postgres, grouped, section_a, pilot, poison_trigger, errcode, status, code
):
    """Innocent rows fail with the one that failed their statement: nothing of it was committed."""
    poison_trigger(errcode)
    agents = [agent_with_key(section_a, key=f"smk_group-{index}") for index in range(5)]
    posts = [(agent.pk, flat(float(index)), f"smk_group-{index}") for index, agent in enumerate(agents)]
    posts.insert(2, (agents[0].pk, {**flat(9.0), "status": "poison"}, "smk_group-0"))

    answers = one_group(grouped, pilot, posts)

    assert answers == [(status, code, False)] * len(posts)
    assert list(Heartbeat.objects.values_list("agent", flat=True)) == [pilot.pk]
    assert not Agent.objects.filter(pk__in=[agent.pk for agent in agents], last_seen_at__isnull=False).exists()


def test_continuous_concurrency_loses_nothing(on_postgres, grouped, section_a):
    agents = [agent_with_key(section_a, key=f"smk_group-{index}") for index in range(10)]
    rng = random.Random(7)
    plan = [(index, rng.randrange(len(agents))) for index in range(200)]
    answers = {}

    def sender(share):
        try:
            client = Client()
            for index, which in share:
                url, header = f"/v1/agent/{agents[which].pk}/heartbeat", key_header(f"smk_group-{which}")
                answers[index] = client.post(url, flat(float(index)), content_type="application/json", **header)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender, args=(plan[start::16],)) for start in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(answers) == list(range(200))
    assert {response.status_code for response in answers.values()} == {204}
    assert sorted(Heartbeat.objects.values_list("cpu_usage_percent", flat=True)) == [float(i) for i in range(200)]
    assert sum(grouped.sizes) == 200 and max(grouped.sizes) > 1
    assert not Agent.objects.filter(pk__in=[agent.pk for agent in agents], last_seen_at__isnull=True).exists()


def test_a_heartbeat_stuck_behind_a_leader_is_a_503_and_not_stored_later(on_postgres, grouped, section_a, pilot):
    agent = agent_with_key(section_a, name="probe")
    release = threading.Event()
    grouped.committer.wait_seconds = 0.3
    grouped.before = lambda rows: release.wait(10)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, pilot.pk, flat(99.0), PILOT_KEY)
        wait_until(lambda: grouped.sizes)

        assert post(agent.pk, flat(1.0), KEY) == (503, "service_unavailable", False)

        release.set()
        assert first.result(10) == (204, None, True)
    assert post(agent.pk, flat(2.0), KEY) == (204, None, True)
    assert grouped.sizes == [1, 1]
    assert sorted(Heartbeat.objects.values_list("cpu_usage_percent", flat=True)) == [2.0, 99.0]


# ---------------------------------------------------------------------------------------------
# Alone, with the option on or off, on either database


@pytest.mark.parametrize("group_commit", [True, False], ids=["on", "off"])
def test_a_lone_heartbeat_is_the_one_statement_it_always_was(transactional_db, settings, section_a, group_commit):
    recorder = Recorder()
    settings.SMOTRA = replace(
        settings.SMOTRA, agent=replace(settings.SMOTRA.agent, heartbeat_group_commit=group_commit)
    )
    agent = agent_with_key(section_a)
    client = Client()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vitals, "_GROUP", recorder.committer)
        with CaptureQueriesContext(connection) as queries:
            response = client.post(
                f"/v1/agent/{agent.pk}/heartbeat", flat(1.0), content_type="application/json", **key_header()
            )

    assert response.status_code == 204
    assert Heartbeat.objects.filter(agent=agent).count() == 1
    assert Agent.objects.get(pk=agent.pk).last_seen_at is not None
    bookkeeping = ("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT")  # SQLite's transaction
    statements = [query["sql"] for query in queries if not query["sql"].startswith(bookkeeping)]
    postgresql = connection.vendor == "postgresql"
    # SQLite ignores the option: its two statements, never the committer.
    assert recorder.sizes == ([1] if postgresql and group_commit else [])
    if postgresql:
        [statement] = statements
        assert statement.startswith("WITH agent AS (SELECT id FROM agents_agent WHERE id = ")
    else:
        assert [sql.split()[0] for sql in statements] == ["INSERT", "UPDATE"]


def test_a_heartbeat_inside_a_transaction_is_written_alone(db, grouped, section_a):
    """A caller in a transaction must not have its row committed by another thread's statement."""
    agent = agent_with_key(section_a)

    response = Client().post(
        f"/v1/agent/{agent.pk}/heartbeat", flat(1.0), content_type="application/json", **key_header()
    )

    assert response.status_code == 204
    assert Heartbeat.objects.filter(agent=agent).count() == 1
    assert grouped.sizes == []
