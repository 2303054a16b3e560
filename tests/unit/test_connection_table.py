"""The shared table by which gunicorn's processes keep their connections even (idp.serving)."""

from __future__ import annotations

import os
import subprocess
import sys

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


def test_without_shared_memory_the_worker_serves_unbalanced(monkeypatch, tmp_path):
    """Where semaphores or shared memory cannot be made (no /dev/shm), gunicorn still starts."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from idp import serving

    def unavailable(*args, **kwargs):
        raise OSError(38, "Function not implemented")

    cfg = Config()
    cfg.set("workers", 2)
    cfg.set("worker_tmp_dir", str(tmp_path))
    monkeypatch.setattr(serving, "ConnectionTable", unavailable)
    monkeypatch.setattr(serving.BalancedThreadWorker, "table", None)
    worker = serving.BalancedThreadWorker(1, os.getppid(), [], None, 30, cfg, Logger(cfg))
    assert worker.table is None
    assert worker._ahead() is False  # takes every connection offered
    worker.tmp.close()
