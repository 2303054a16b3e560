"""The Argon2 floor: how many argon2id verifications these cores do with the service's parameters.

One process per gunicorn worker, each verifying in a loop for a few seconds, all started together.
A password login cannot be faster than this; its ratio to the floor is what PERFORMANCE.md judges.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier

from argon2 import PasswordHasher, Type

from bench.services import BenchError

PASSWORD = "Floor-measurement-7!"
MAX_VERIFIES_PER_PROCESS = 100_000


@dataclass(frozen=True)
class Floor:
    processes: int
    verifies: int
    rate: float  # verifications per second, all processes together
    ms_per_verify: float  # wall time in one process
    cpu_ms_per_verify: float  # CPU time in one process


def _verify_loop(memory_kib: int, time_cost: int, parallelism: int, seconds: float, start: Barrier, out: multiprocessing.Queue) -> None:
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, hash_len=32, salt_len=16, type=Type.ID)
    hashed = hasher.hash(PASSWORD)
    hasher.verify(hashed, PASSWORD)
    start.wait(timeout=60)
    count = 0
    cpu_began = time.process_time()
    began = time.perf_counter()
    deadline = began + seconds
    while count < MAX_VERIFIES_PER_PROCESS and time.perf_counter() < deadline:
        hasher.verify(hashed, PASSWORD)
        count += 1
    out.put((count, time.perf_counter() - began, time.process_time() - cpu_began))


def measure_floor(*, memory_kib: int, time_cost: int, parallelism: int, processes: int, seconds: float) -> Floor:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(processes)
    out = ctx.Queue()
    workers = [
        ctx.Process(target=_verify_loop, args=(memory_kib, time_cost, parallelism, seconds, start, out), daemon=True)
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        results = [out.get(timeout=seconds + 90) for _ in workers]
    except Exception as exc:
        raise BenchError(f"the Argon2 floor measurement did not finish: {exc!r}") from None
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join(timeout=5)
    verifies = sum(count for count, _, _ in results)
    if not verifies:
        raise BenchError("the Argon2 floor measurement verified nothing")
    rate = sum(count / elapsed for count, elapsed, _ in results)
    per_verify = sum(elapsed for _, elapsed, _ in results) / verifies * 1000
    cpu_per_verify = sum(cpu for _, _, cpu in results) / verifies * 1000
    return Floor(processes, verifies, rate, per_verify, cpu_per_verify)
