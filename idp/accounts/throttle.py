"""Per-account throttles (failed logins, second-factor tries, codes sent) that hold across IP addresses."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter, RateLimiter
from redis import RedisError

from idp.errors import RateLimited
from idp.ratelimits import is_on

log = logging.getLogger(__name__)


class AccountThrottle:
    """Counts events per account in the rate-limit storage (Redis, or memory when embedded).

    For logins it is keyed by the account id when the account exists and by the normalised
    identifier when it does not, so both cases throttle alike and nothing tells them apart. If the
    shared storage is unreachable, counting goes on in this process's memory rather than failing
    open or closed.
    """

    def __init__(self, strategy: RateLimiter, limit: str, namespace: str, fallback: RateLimiter) -> None:
        self._strategy = strategy
        self._fallback = fallback
        self._limit: RateLimitItem | None = _parsed(limit) if is_on(limit) else None
        self._namespace = namespace

    def blocked(self, account_key: str) -> bool:
        return not self._call("test", account_key)

    def acquire(self, account_key: str) -> bool:
        """Count an event if the limit allows one more, in one atomic step; False, counting nothing,
        when it does not. Where events are counted before the work they limit (a password check),
        concurrent requests cannot all pass a test made before any of them was counted."""
        return bool(self._call("hit", account_key))

    def forget(self, account_key: str) -> None:
        """Forget the account's events in this window (its failures, after a right password)."""
        self._call("clear", account_key)

    def take(self, account_key: str, message: str) -> None:
        """Count one event (`acquire`), or raise RateLimited with `message`, this limit's amount and
        the seconds until the window lets the next one in."""
        if self.acquire(account_key):
            return
        assert self._limit is not None  # a limit that is off allows every event
        reset, _ = self._call("get_window_stats", account_key)
        raise RateLimited(message, retry_after=max(1, int(reset - time.time())), limit=self._limit.amount)

    def _call(self, method: str, account_key: str) -> Any:
        if self._limit is None:
            return True
        try:
            return getattr(self._strategy, method)(self._limit, self._namespace, account_key)
        except (StorageError, RedisError, OSError) as exc:
            log.warning("rate-limit storage unavailable (%s); counting in memory", type(exc).__name__)
        return getattr(self._fallback, method)(self._limit, self._namespace, account_key)


@functools.lru_cache(maxsize=64)
def _parsed(limit: str) -> RateLimitItem:
    """A limit string parsed once per process, not per request that builds a throttle."""
    return parse(limit)


def memory_fallback() -> RateLimiter:
    return MovingWindowRateLimiter(MemoryStorage())
