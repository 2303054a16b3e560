"""Per-account throttles (failed logins, second-factor tries, codes sent) that hold across IP addresses."""

from __future__ import annotations

import functools
import logging
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter, RateLimiter
from redis import RedisError

from idp.errors import RateLimited
from idp.ratelimits import is_on, network_of

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
        except STORAGE_ERRORS as exc:
            _storage_unavailable(exc)
        return getattr(self._fallback, method)(self._limit, self._namespace, account_key)

    @property
    def amount(self) -> int | None:
        """Events allowed in a window, None when the limit is off."""
        return self._limit.amount if self._limit is not None else None

    @property
    def seconds(self) -> int:
        return self._limit.get_expiry() if self._limit is not None else 0

    def window(self, account_key: str) -> tuple[float, int]:
        """(when the window lets the next event in, events left in it)."""
        reset_at, remaining = self._call("get_window_stats", account_key)
        return reset_at, remaining

    def in_redis(self, account_key: str) -> tuple[RedisStorage, str] | None:
        """The storage and key of this account's window when they are in Redis (as `limits` keeps
        a moving window: a list of timestamps, newest first), else None."""
        storage = getattr(self._strategy, "storage", None)
        if self._limit is None or not isinstance(storage, RedisStorage):
            return None
        return storage, storage.prefixed_key(self._limit.key_for(self._namespace, account_key))


STORAGE_ERRORS = (StorageError, RedisError, OSError)


def _storage_unavailable(exc: BaseException) -> None:
    log.warning("rate-limit storage unavailable (%s); counting in memory", type(exc).__name__)


@dataclass
class LoginWindow:
    """Where a client network stands against the sign-in limit, as its RateLimit headers say it."""

    limit: int
    used: int
    reset_at: float  # when the oldest failure in the window leaves it (epoch seconds)

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def resets_in(self, now: float) -> int:
        return max(0, math.ceil(self.reset_at - now))


@dataclass(frozen=True)
class SignInCheck:
    """The answer of `LoginThrottle.check`: whether the account may try (the attempt counted),
    and the network's window, None when that limit is off or was not asked."""

    network: str | None
    account_key: str
    account_allowed: bool
    window: LoginWindow | None


# KEYS[1]: the client network's failed sign-ins, KEYS[2]: the account's attempts, both moving windows
# as `limits` keeps them (a list of timestamps, newest first). ARGV: now, then each limit's amount and
# window in seconds, an amount of 0 for a limit that is off. Answers {network allowed, failures in the
# network's window, the oldest of them, account allowed}; a refused network counts nothing.
_CHECK_SCRIPT = """
local now = tonumber(ARGV[1])
local network_limit, account_limit = tonumber(ARGV[2]), tonumber(ARGV[4])
local failures, oldest = 0, now
if network_limit > 0 then
  local since = now - tonumber(ARGV[3])
  for _, entry in ipairs(redis.call('lrange', KEYS[1], 0, network_limit - 1)) do
    local at = tonumber(entry)
    if at < since then break end
    failures, oldest = failures + 1, at
  end
  if failures >= network_limit then return {0, failures, tostring(oldest), 0} end
end
if account_limit > 0 then
  local expiry = tonumber(ARGV[5])
  local last = redis.call('lindex', KEYS[2], account_limit - 1)
  if last and tonumber(last) >= now - expiry then return {1, failures, tostring(oldest), 0} end
  redis.call('lpush', KEYS[2], ARGV[1])
  redis.call('ltrim', KEYS[2], 0, account_limit - 1)
  redis.call('expire', KEYS[2], expiry)
end
return {1, failures, tostring(oldest), 1}
"""


class LoginThrottle:
    """The two limits of a password check, asked together: failed sign-ins per client network
    (RATE_LIMIT_LOGIN, counted after a failure) and attempts per account (RATE_LIMIT_LOGIN_ACCOUNT,
    counted before the check and forgotten after a right password, `AccountThrottle`).

    On Redis one script reads the network's window and counts the account's attempt, so a
    successful sign-in costs two round trips (that script, then forgetting the account's attempts),
    and no request hooks. Without Redis, or while it is unreachable, both limits count in memory
    as `AccountThrottle` does. A network limit of its own, not Flask-Limiter's: a limiter decorator
    tests before the view and counts after it, a third round trip on every sign-in.

    `on_window` is told each network window checked (the API sends it in RateLimit headers)."""

    def __init__(
        self, network: AccountThrottle, account: AccountThrottle, on_window: Callable[[LoginWindow], None] | None = None
    ) -> None:
        self._network = network
        self._account = account
        self._on_window = on_window

    def check(self, address: str | None, account_key: str) -> SignInCheck:
        """Raise RateLimited when the client network has used up its failures (counting nothing);
        else count an attempt on the account, if its limit allows one. With no client address
        (None), or the network's limit off, the account's limit alone."""
        amount = self._network.amount
        if address is None or amount is None:
            return SignInCheck(None, account_key, self._account.acquire(account_key), None)
        network = network_of(address)
        now = time.time()
        answer = self._checked_in_redis(network, account_key, now)
        if answer is None:
            reset_at, remaining = self._network.window(network)
            failures = amount - remaining
            allowed = failures < amount
            account_allowed = allowed and self._account.acquire(account_key)
        else:
            allowed, failures, oldest, account_allowed = answer
            reset_at = (oldest if failures else now) + self._network.seconds
        window = LoginWindow(amount, failures, reset_at)
        if not allowed:
            raise RateLimited(retry_after=max(1, window.resets_in(now)), limit=amount)
        if self._on_window is not None:
            self._on_window(window)
        return SignInCheck(network, account_key, account_allowed, window)

    def failed(self, check: SignInCheck) -> None:
        """Count a failed check against the client network (the account's attempt stays counted)."""
        if check.network is not None and check.window is not None:
            self._network.acquire(check.network)
            check.window.used += 1
            if check.window.used == 1:
                check.window.reset_at = time.time() + self._network.seconds

    def succeeded(self, check: SignInCheck) -> None:
        """A right password: forget the account's attempts (its failures included)."""
        self._account.forget(check.account_key)

    def _checked_in_redis(self, network: str, account_key: str, now: float) -> tuple[bool, int, float, bool] | None:
        network_window = self._network.in_redis(network)
        if network_window is None:
            return None
        storage, network_key = network_window
        account_window = self._account.in_redis(account_key)
        account_amount = self._account.amount if account_window is not None else 0
        try:
            allowed, failures, oldest, account_allowed = _check_script(storage)(
                keys=[network_key, account_window[1] if account_window else network_key],
                args=[repr(now), self._network.amount, self._network.seconds, account_amount, self._account.seconds],
            )
        except STORAGE_ERRORS as exc:
            _storage_unavailable(exc)
            return None
        return bool(allowed), int(failures), float(oldest), bool(account_allowed)


_SCRIPTS: weakref.WeakKeyDictionary[RedisStorage, Any] = weakref.WeakKeyDictionary()


def _check_script(storage: RedisStorage) -> Any:
    """The check script registered with this storage's client (EVALSHA, loaded again if Redis lost it)."""
    script = _SCRIPTS.get(storage)
    if script is None:
        script = _SCRIPTS[storage] = storage.get_connection().register_script(_CHECK_SCRIPT.encode())
    return script


@functools.lru_cache(maxsize=64)
def _parsed(limit: str) -> RateLimitItem:
    """A limit string parsed once per process, not per request that builds a throttle."""
    return parse(limit)


def memory_fallback() -> RateLimiter:
    return MovingWindowRateLimiter(MemoryStorage())
