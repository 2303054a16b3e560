"""The shared table by which gunicorn's processes keep their connections even (idp.serving)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from idp.serving import STALE_S, ConnectionTable


def ended_pid() -> int:
    """The number of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_process_compares_itself_with_the_least_loaded_other():
    table = ConnectionTable(slots=4)
    mine, other, third = (table.claim(pid, now=100.0) for pid in (os.getpid(), os.getppid(), 1))
    assert len({mine, other, third}) == 3
    table.write(mine, 7, now=100.0)
    table.write(other, 5, now=100.0)
    table.write(third, 9, now=100.0)
    assert table.fewest_elsewhere(mine, now=100.5) == 5
    assert table.fewest_elsewhere(other, now=100.5) == 7


def test_alone_there_is_no_one_to_compare_with():
    table = ConnectionTable(slots=2)
    mine = table.claim(os.getpid(), now=10.0)
    assert mine is not None
    assert table.fewest_elsewhere(mine, now=10.0) is None


def test_an_entry_not_written_for_a_while_is_ignored():
    """A process that died without leaving (SIGKILL, a crash) must not hold the others back."""
    table = ConnectionTable(slots=2)
    mine, other = table.claim(os.getpid(), now=0.0), table.claim(os.getppid(), now=0.0)
    table.write(other, 0, now=0.0)
    assert table.fewest_elsewhere(mine, now=STALE_S - 0.1) == 0
    assert table.fewest_elsewhere(mine, now=STALE_S + 0.1) is None


def test_a_process_that_left_is_no_longer_counted_and_its_entry_is_reused():
    table = ConnectionTable(slots=2)
    mine, other = table.claim(os.getpid(), now=0.0), table.claim(os.getppid(), now=0.0)
    table.release(other)
    assert table.fewest_elsewhere(mine, now=0.1) is None
    assert table.claim(12345678, now=0.2) == other


def test_the_entry_of_an_ended_process_is_taken_by_a_new_one():
    table = ConnectionTable(slots=2)
    table.claim(os.getpid(), now=0.0)
    ended = table.claim(ended_pid(), now=0.0)
    assert ended is not None
    assert table.claim(os.getppid(), now=0.1) == ended
    assert table.claim(1, now=0.2) is None  # both entries belong to running processes


def make_worker(monkeypatch, tmp_path, **settings):
    """A worker as the master makes it (before the fork), with a table of its own."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from idp import serving

    cfg = Config()
    cfg.set("workers", 2)
    cfg.set("worker_tmp_dir", str(tmp_path))
    for name, value in settings.items():
        cfg.set(name, value)
    monkeypatch.setattr(serving.BalancedThreadWorker, "table", None)
    worker = serving.BalancedThreadWorker(1, os.getppid(), [], None, 30, cfg, Logger(cfg))
    return worker


def waiting_connections(monkeypatch, count: int) -> list[int]:
    """gthread's accept, taking one of `count` queued connections a call (the list holds what is left)."""
    from idp import serving

    queue = [count]

    def accept_one(self, listener):
        if queue[0]:
            queue[0] -= 1
            self.nr_conns += 1

    monkeypatch.setattr(serving.ThreadWorker, "accept", accept_one)
    return queue


def test_without_shared_memory_the_worker_serves_unbalanced(monkeypatch, tmp_path):
    """Where semaphores or shared memory cannot be made (no /dev/shm), gunicorn still starts."""
    from idp import serving

    def unavailable(*args, **kwargs):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(serving, "ConnectionTable", unavailable)
    worker = make_worker(monkeypatch, tmp_path)
    assert worker.table is None
    assert worker._ahead() is False  # takes every connection offered
    worker.tmp.close()


def test_the_least_loaded_process_takes_the_waiting_connections_up_to_its_cap(monkeypatch, tmp_path):
    worker = make_worker(monkeypatch, tmp_path, worker_connections=3)
    queue = waiting_connections(monkeypatch, 10)
    worker.accept(None)  # alone: no other process to leave them to
    assert (worker.nr_conns, queue) == (3, [7])
    worker.tmp.close()


def test_a_process_ahead_of_another_leaves_the_connection_to_it(monkeypatch, tmp_path):
    worker = make_worker(monkeypatch, tmp_path)
    other = worker.table.claim(os.getppid(), now=time.monotonic())
    worker.table.write(other, 1, now=time.monotonic())
    queue = waiting_connections(monkeypatch, 5)
    worker.accept(None)
    assert (worker.nr_conns, queue) == (2, [3])  # level with the other, then one more: ahead, so it stops
    worker.accept(None)
    assert (worker.nr_conns, queue) == (2, [3])
    worker.table.write(other, 2, now=time.monotonic())
    worker.accept(None)
    assert (worker.nr_conns, queue) == (3, [2])
    worker.tmp.close()


def test_a_process_leaves_the_table_however_its_loop_ends(monkeypatch, tmp_path):
    """max_requests or SIGQUIT end the loop without SIGTERM's handler: the others must not wait for it."""
    from idp import serving

    def loop_ends(self):
        raise SystemExit(0)

    worker = make_worker(monkeypatch, tmp_path)
    worker._publish()
    slot = worker._slot
    assert slot is not None and worker.table._entries[slot].pid == os.getpid()
    monkeypatch.setattr(serving.ThreadWorker, "run", loop_ends)
    with pytest.raises(SystemExit):
        worker.run()
    assert worker._slot is None and worker.table._entries[slot].pid == 0
    worker.tmp.close()


def test_a_stopping_process_leaves_the_table_at_its_next_look(monkeypatch, tmp_path):
    worker = make_worker(monkeypatch, tmp_path)
    worker._publish()
    slot = worker._slot
    worker.alive = False  # what gthread does on max_requests, from a request's thread
    worker._publish()
    assert worker._slot is None and worker.table._entries[slot].pid == 0
    worker.tmp.close()


def test_a_process_tries_once_for_an_entry(monkeypatch, tmp_path):
    """With the table full, or its lock held by a killed process, the process runs unbalanced
    rather than trying again (and waiting for the lock) on every turn of its loop."""
    worker = make_worker(monkeypatch, tmp_path)
    tries = []
    monkeypatch.setattr(worker.table, "claim", lambda pid, *, now: tries.append(pid))
    for _ in range(3):
        worker._publish()
    assert tries == [os.getpid()] and worker._slot is None
    worker.tmp.close()
