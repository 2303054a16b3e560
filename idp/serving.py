"""gunicorn's thread worker, with its processes holding about as many connections each.

gunicorn's processes race to accept connections, and a keep-alive connection then stays with the
process that accepted it. A client that opens its connections at once, a load balancer's pool, or
the benchmark's 100 keep-alive clients, land unevenly: 90 of 100 connections were seen on one of
two processes. Each process serves its own connections at the same rate as the other (one core's
worth), so the requests of the crowded one waited nine times as long: in the old service's
stress test the logins' p99 was 3.2 s where their mean wait was 1.6 s; balanced, 1.6-1.9 s.

`BalancedThreadWorker` (gunicorn.conf.py's `worker_class`) accepts a connection only while its
process holds no more connections than the least loaded of the others; the others then accept
the next ones. Each process publishes its count in a small table of shared memory, made by the
master before the first fork. A process that stops (graceful shutdown, max_requests) leaves the
table at once; one that dies without leaving is ignored once it has ended or its entry is older
than STALE_S.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import time
from multiprocessing.sharedctypes import RawArray
from typing import Any, ClassVar

from gunicorn.workers.gthread import ThreadWorker

STALE_S = 2.5  # a live process writes its entry at least every second (gunicorn's event wait)
YIELD_S = 0.001  # how long a process that leaves a connection to the others waits before it looks again
LOCK_WAIT_S = 0.5


class Entry(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_int), ("connections", ctypes.c_int), ("written", ctypes.c_double)]


class ConnectionTable:
    """How many connections each live worker process holds, in memory shared across fork()."""

    def __init__(self, slots: int) -> None:
        self._entries: Any = RawArray(Entry, slots)
        self._lock = multiprocessing.get_context("fork").Lock()  # gunicorn forks its workers

    def claim(self, pid: int, *, now: float) -> int | None:
        """An entry for process `pid` (a free one, or a process's that has ended); None if all are
        taken, or if the lock is not free within LOCK_WAIT_S (a process killed while holding it)."""
        if not self._lock.acquire(timeout=LOCK_WAIT_S):
            return None
        try:
            for index, entry in enumerate(self._entries):
                if entry.pid == 0 or not _running(entry.pid):
                    entry.pid, entry.connections, entry.written = pid, 0, now
                    return index
            return None
        finally:
            self._lock.release()

    def write(self, index: int, connections: int, *, now: float) -> None:
        entry = self._entries[index]
        entry.connections, entry.written = connections, now

    def release(self, index: int) -> None:
        self._entries[index].pid = 0

    def fewest_elsewhere(self, index: int, *, now: float) -> int | None:
        """The fewest connections a live process other than entry `index`'s holds; None if there is no other."""
        counts = [
            entry.connections
            for other, entry in enumerate(self._entries)
            if other != index and entry.pid and now - entry.written <= STALE_S and _running(entry.pid)
        ]
        return min(counts) if counts else None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or the number is another user's process now
        return False
    return True


class BalancedThreadWorker(ThreadWorker):
    """ThreadWorker that leaves a new connection to the others while it holds more than one of them."""

    table: ClassVar[ConnectionTable | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slot: int | None = None
        self._claimed = False  # one try: a full table or a stuck lock must not cost every loop its wait
        # This runs in the master, before the fork: the first worker made creates the table they all share.
        # With reuse_port every process has a listen queue of its own: a connection the kernel put in
        # the queue of a process that is ahead would wait there, so there is nothing to balance.
        cls = type(self)
        if cls.table is None and not self.cfg.reuse_port:
            try:
                cls.table = ConnectionTable(slots=2 * self.cfg.workers + 2)  # room for replacements starting as others stop
            except (OSError, ImportError) as exc:  # no shared memory or sem_open here (no /dev/shm): serve, unbalanced
                self.log.warning("connections are not balanced across processes: %s", exc)

    def accept(self, listener: Any) -> None:
        """Every process is woken by a new connection; the one holding the fewest takes it, and
        the next ones while it is not ahead of another (one wake-up, not one per connection). The
        others look again after a moment: the listener stays readable until its queue is taken."""
        if self._ahead():
            time.sleep(YIELD_S)
            return
        while True:
            held = self.nr_conns
            super().accept(listener)  # one connection, if one is waiting
            if self.nr_conns == held or self.nr_conns >= self.worker_connections or not self.alive or self._ahead():
                return

    def run(self) -> None:
        try:
            super().run()
        finally:  # however the loop ends (max_requests, SIGQUIT, an error)
            self._leave()

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        self._publish()  # at least once a second (gunicorn's longest wait), so the entry stays fresh
        super().wait_for_and_dispatch_events(timeout)

    def _publish(self) -> None:
        if self.table is None:
            return
        if not self.alive:
            self._leave()
            return
        now = time.monotonic()
        if not self._claimed:  # joins once it serves (a process loading the app accepts nothing yet)
            self._claimed = True
            self._slot = self.table.claim(os.getpid(), now=now)
        slot = self._slot  # a signal handler may leave the table meanwhile
        if slot is not None:
            self.table.write(slot, self.nr_conns, now=now)

    def _ahead(self) -> bool:
        """Whether this process holds more connections than another live one."""
        self._publish()
        slot = self._slot
        if slot is None or self.table is None:
            return False
        fewest = self.table.fewest_elsewhere(slot, now=time.monotonic())
        return fewest is not None and self.nr_conns > fewest

    def _leave(self) -> None:
        """Out of the table: a stopping process accepts nothing more, so no other waits for it."""
        slot, self._slot = self._slot, None
        if slot is not None and self.table is not None:
            self.table.release(slot)
