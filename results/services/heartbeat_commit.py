"""Group commit of heartbeats (``agent.heartbeat_group_commit``, PostgreSQL only).

Gunicorn's gthread worker runs several request threads in one process, each with its own database
connection. A heartbeat costs one statement (results.services.vitals), and in autocommit one commit:
one WAL flush each. Here the threads of a process that store heartbeats at the same time hand their
rows to one of them, the leader, which writes them all with one statement on its own connection and
hands each caller its own outcome; so N concurrent heartbeats cost one round trip and one commit.

The protocol (no background thread: the callers themselves take turns, so an idle process has no
thread to supervise and a lone heartbeat costs what it costs without this):

- A caller queues its row. If no one leads, it leads; else it waits on its own event.
- The leader takes every row queued so far, writes them, and only then (the statement has committed:
  the connection is in autocommit) wakes each caller of its group with its outcome. Rows queued
  during the write are left for the next leader: the first of them is promoted (its event woken),
  and it takes them all. Leadership is passed on under the same lock that queueing takes, so a row
  queued while the leader finishes is either taken by a leader or finds no leader and leads itself:
  no row waits for a wake-up that never comes.
- A caller that waits longer than ``wait_seconds`` (a leader stuck on a lock or on a dead
  connection) gives up with an OperationalError (503, the agent sends again) instead of holding
  its request thread forever. If its row was still queued it is withdrawn; if a leader had taken it,
  the row may still be stored, as when a connection drops after a commit.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Generic, TypeVar

from django.db import DatabaseError, OperationalError

Row = TypeVar("Row")

# Well under gunicorn's worker timeout (server.read_timeout + write_timeout, 30 s by default), so a
# stuck group answers 503 before the master kills the whole worker.
WAIT_SECONDS = 10.0


class _State(Enum):
    QUEUED = "queued"
    PROMOTED = "promoted"  # the next leader: takes the queue when it wakes
    TAKEN = "taken"  # in a group being written
    DONE = "done"


class _Entry(Generic[Row]):
    """One caller's row, and the outcome its caller waits for. Changed only under the committer's lock."""

    __slots__ = ("error", "row", "state", "stored", "woken")

    def __init__(self, row: Row):
        self.row = row
        self.state = _State.QUEUED
        self.woken = threading.Event()  # set when promoted, or when done
        self.stored: bool = False
        self.error: BaseException | None = None

    def outcome(self) -> bool:
        if self.error is not None:
            raise self.error
        return self.stored


class GroupCommit(Generic[Row]):
    """Rows from concurrent callers of one process, written by one of them at a time.

    ``write(rows)`` writes the rows with one statement on the calling thread's connection, committed
    when it returns, and says per row whether it was stored."""

    def __init__(self, write: Callable[[Sequence[Row]], Sequence[bool]], *, wait_seconds: float = WAIT_SECONDS):
        self._write = write
        self.wait_seconds = wait_seconds
        self._lock = threading.Lock()
        self._queue: list[_Entry[Row]] = []
        self._leading = False  # a leader is writing, or has been promoted and not yet taken the queue

    @property
    def queued(self) -> int:
        """Rows waiting for a leader to take them."""
        with self._lock:
            return len(self._queue)

    def submit(self, row: Row) -> bool:
        """Whether ``row`` was stored, once the statement that wrote it committed; or the error that
        statement raised, as every caller of its group gets it."""
        entry = _Entry(row)
        with self._lock:
            self._queue.append(entry)
            leads = not self._leading
            self._leading = True
        if leads or self._wait(entry):
            self._lead(entry)
        return entry.outcome()

    def _wait(self, entry: _Entry[Row]) -> bool:
        """Wait for the outcome (False) or for leadership (True)."""
        entry.woken.wait(self.wait_seconds)
        with self._lock:  # decided under the lock: a promotion racing the timeout is not lost
            if entry.state is _State.PROMOTED:
                return True
            if entry.state is _State.DONE:
                return False
            if entry.state is _State.QUEUED:
                self._queue.remove(entry)
            entry.state = _State.DONE
            entry.error = OperationalError(f"No heartbeat group committed within {self.wait_seconds:g} s.")
            return False

    def _lead(self, mine: _Entry[Row]) -> None:
        with self._lock:
            group, self._queue = self._queue, []
            for entry in group:
                entry.state = _State.TAKEN
        stored: Sequence[bool] = ()
        error: BaseException | None = None
        try:
            stored = self._write([entry.row for entry in group])
        except BaseException as exc:  # every caller of the group fails as the statement did
            error = exc
        self._pass_on()  # before the wake-ups: the next group's write need not wait for them
        self._finish(group, mine, stored, error)

    def _pass_on(self) -> None:
        """Promote the first row queued during the write, or step down when there is none."""
        with self._lock:
            if self._queue:
                self._queue[0].state = _State.PROMOTED
                self._queue[0].woken.set()
            else:
                self._leading = False

    def _finish(self, group: list[_Entry[Row]], mine: _Entry[Row], stored: Sequence[bool], error) -> None:
        with self._lock:
            for index, entry in enumerate(group):
                if entry.state is not _State.TAKEN:
                    continue  # it gave up waiting and already answered
                entry.state = _State.DONE
                if error is not None:
                    entry.error = error if entry is mine else _copy_for_waiter(error)
                else:
                    entry.stored = bool(stored[index])
                entry.woken.set()


def _copy_for_waiter(error: BaseException) -> BaseException:
    """The group's error for another caller: the same class (an OperationalError stays a 503, any
    other DatabaseError a 500), with its own traceback rather than one shared by several threads."""
    try:
        copied = copy.copy(error)
    except Exception:  # an exception type that cannot be rebuilt from its args
        copied = DatabaseError(str(error))
    copied.__cause__, copied.__traceback__ = error, None
    return copied
