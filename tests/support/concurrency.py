"""Requests sent together, for the tests of limits that must hold under concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from flask import Flask


def wrong_passwords_at_once(app: Flask, count: int, *, address: Callable[[int], str], identifier: str = "alice") -> list[int]:
    """`count` sign-ins with wrong passwords, released together by a barrier, the n-th from
    `address(n)`: their statuses, in that order."""
    start = threading.Barrier(count)

    def guess(n: int) -> int:
        client = app.test_client()
        body = {"emailOrUsername": identifier, "password": f"Wrong-Password-{n}!"}
        start.wait(timeout=30)
        return client.post("/api/auth/login", json=body, environ_base={"REMOTE_ADDR": address(n)}).status_code

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(guess, range(count)))
