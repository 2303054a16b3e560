"""Per-account throttles (failed logins, second-factor tries, codes sent) that hold across IP addresses."""

from __future__ import annotations

import copy
import functools
import logging
import math
import threading
import time
import weakref
from collections import OrderedDict
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
        when it does not. Where events are counted before the work they limit (a code sent),
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

    def in_memory(self) -> AccountThrottle:
        """This throttle counting in this process's memory only (its fallback when it counts in
        Redis): for steps that must not wait on an unreachable Redis."""
        if self.redis is None:
            return self
        local = copy.copy(self)
        local._strategy = self._fallback
        return local

    @property
    def redis(self) -> RedisStorage | None:
        """The Redis storage the windows are kept in, None when they are in memory."""
        storage = getattr(self._strategy, "storage", None)
        return storage if isinstance(storage, RedisStorage) else None

    def redis_key(self, storage: RedisStorage, account_key: str) -> str:
        """The key of this account's window in `storage`, a moving window as `limits` keeps it (a
        list of timestamps, newest first); the key of a limit that is off counts nothing."""
        item = self._limit or _parsed("1 per second")
        return storage.prefixed_key(item.key_for(self._namespace, account_key))


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


# KEYS[1]: the client network's failed sign-ins, KEYS[2]: the account's failed attempts, both moving
# windows as `limits` keeps them (a list of timestamps, newest first). ARGV: now, each limit's amount
# and window in seconds (an amount of 0 for a limit that is off), then "1" for a right password.
# Answers {network allowed, failures in the network's window, the oldest of them, account allowed}.
# A refused network counts nothing; an account past its limit gets no answer about its password and
# its try counts against the network; a wrong password counts against both; a right one forgets the
# account's failures.
_SETTLE_SCRIPT = """
local now = tonumber(ARGV[1])
local network_limit, network_expiry = tonumber(ARGV[2]), tonumber(ARGV[3])
local account_limit, account_expiry = tonumber(ARGV[4]), tonumber(ARGV[5])
local right = ARGV[6] == '1'
local failures, oldest = 0, now
if network_limit > 0 then
  for _, entry in ipairs(redis.call('lrange', KEYS[1], 0, network_limit - 1)) do
    local at = tonumber(entry)
    if at < now - network_expiry then break end
    failures, oldest = failures + 1, at
  end
  if failures >= network_limit then return {0, failures, tostring(oldest), 0} end
end
local account_allowed = 1
if account_limit > 0 then
  local last = redis.call('lindex', KEYS[2], account_limit - 1)
  if last and tonumber(last) >= now - account_expiry then
    account_allowed = 0
  elseif right then
    redis.call('del', KEYS[2])
  else
    redis.call('lpush', KEYS[2], ARGV[1])
    redis.call('ltrim', KEYS[2], 0, account_limit - 1)
    redis.call('expire', KEYS[2], account_expiry)
  end
end
if network_limit > 0 and (account_allowed == 0 or not right) then
  redis.call('lpush', KEYS[1], ARGV[1])
  redis.call('ltrim', KEYS[1], 0, network_limit - 1)
  redis.call('expire', KEYS[1], network_expiry)
  if failures == 0 then oldest = now end
  failures = failures + 1
end
return {1, failures, tostring(oldest), account_allowed}
"""


class RefusedNetworks:
    """The client networks this process has seen use up their failed sign-ins, until their
    windows let a sign-in in again: their next tries are answered at once, with no password
    check and no round trip. At most `size` are kept, the ones refused longest ago forgotten
    first (they are only asked again)."""

    def __init__(self, size: int = 10_000) -> None:
        self._until: OrderedDict[str, float] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def remember(self, network: str, until: float) -> None:
        with self._lock:
            self._until[network] = until
            self._until.move_to_end(network)
            while len(self._until) > self._size:
                self._until.popitem(last=False)

    def until(self, network: str, now: float) -> float | None:
        """When the network's window lets a sign-in in, if it is remembered refused until later."""
        until = self._until.get(network)
        if until is None:
            return None
        if until > now:
            return until
        with self._lock:
            if self._until.get(network) == until:
                del self._until[network]
        return None


class LoginThrottle:
    """The two limits of a password check: failed sign-ins per client network (RATE_LIMIT_LOGIN)
    and failed attempts per account (RATE_LIMIT_LOGIN_ACCOUNT, `AccountThrottle`, forgotten after
    a right password).

    Both are settled after the password is checked, in one atomic step: one Redis script reads
    and counts both windows, so a sign-in costs one round trip, right password or wrong, and no
    request hooks. Atomic, the limits are exact: concurrent guesses each have their password
    checked (as a refused one would have been, for equal timing), but past either limit their
    answers say nothing about it. A network whose failures fill its window (or that is refused)
    is then remembered in this process (`RefusedNetworks`) and answered before any work
    (`admit`): a blocked network costs a process a password check only for the tries it had in
    flight when it learnt of the block, once per window slot that frees. Without Redis, or while
    it is unreachable, both limits count in memory, under this process's lock.

    `on_window` is told each network window settled (the API sends it in RateLimit headers)."""

    _memory_lock = threading.Lock()

    def __init__(
        self,
        network: AccountThrottle,
        account: AccountThrottle,
        refused: RefusedNetworks,
        on_window: Callable[[LoginWindow], None] | None = None,
    ) -> None:
        self._network = network
        self._account = account
        self._refused = refused
        self._on_window = on_window

    def admit(self, address: str | None) -> None:
        """Raise RateLimited at once for a client network remembered refused."""
        network = self._network_of(address)
        if network is None:
            return
        now = time.time()
        until = self._refused.until(network, now)
        if until is not None:
            raise self._refusal(until, now)

    def settle(self, address: str | None, account_key: str, *, right: bool) -> bool:
        """Count a checked password against the limits: whether its answer may be given (False:
        the account is past its limit, answer as for a wrong password). Raises RateLimited,
        counting nothing, when the client network has used up its failures. With no client address
        (None), or the network's limit off, the account's limit alone."""
        network = self._network_of(address)
        if network is None and self._account.amount is None:
            return True
        now = time.time()
        answer = self._settled_in_redis(network, account_key, right, now)
        if answer is None:
            answer = self._settled_in_memory(network, account_key, right, now)
        allowed, failures, oldest, account_allowed = answer
        if network is None or self._network.amount is None:
            return account_allowed
        window = LoginWindow(self._network.amount, failures, (oldest if failures else now) + self._network.seconds)
        if window.remaining == 0:  # refused now, or this failure used up the window: the next try is refused
            self._refused.remember(network, window.reset_at)
        if not allowed:
            raise self._refusal(window.reset_at, now)
        if self._on_window is not None:
            self._on_window(window)
        return account_allowed

    def _network_of(self, address: str | None) -> str | None:
        """The client network the sign-in limit counts, None without an address or with that limit off."""
        return network_of(address) if address is not None and self._network.amount is not None else None

    def _refusal(self, until: float, now: float) -> RateLimited:
        return RateLimited(retry_after=max(1, math.ceil(until - now)), limit=self._network.amount)

    def _settled_in_redis(self, network: str | None, account_key: str, right: bool, now: float) -> tuple[bool, int, float, bool] | None:
        """The script's answer; None where the windows are in memory, or Redis cannot be reached."""
        storage = self._account.redis
        if storage is None:
            return None
        try:
            allowed, failures, oldest, account_allowed = _settle_script(storage)(
                keys=[self._network.redis_key(storage, network or account_key), self._account.redis_key(storage, account_key)],
                args=[
                    repr(now),
                    self._network.amount if network is not None else 0, self._network.seconds,
                    self._account.amount or 0, self._account.seconds,
                    "1" if right else "0",
                ],
            )
        except STORAGE_ERRORS as exc:
            _storage_unavailable(exc)
            return None
        return bool(allowed), int(failures), float(oldest), bool(account_allowed)

    def _settled_in_memory(self, network: str | None, account_key: str, right: bool, now: float) -> tuple[bool, int, float, bool]:
        """The script's steps on the in-memory windows, under one lock so that they too are atomic
        (and never waiting on Redis while they hold it)."""
        network_limit, account_limit = self._network.in_memory(), self._account.in_memory()
        with self._memory_lock:
            failures, oldest = 0, now
            if network is not None:
                reset_at, remaining = network_limit.window(network)
                failures = (network_limit.amount or 0) - remaining
                oldest = reset_at - network_limit.seconds
                if remaining <= 0:
                    return False, failures, oldest, False
            account_allowed = not account_limit.blocked(account_key)
            if account_allowed and right:
                account_limit.forget(account_key)
            elif account_allowed:
                account_limit.acquire(account_key)
            if network is not None and (not account_allowed or not right) and network_limit.acquire(network):
                failures, oldest = failures + 1, oldest if failures else now
            return True, failures, oldest, account_allowed


_SCRIPTS: weakref.WeakKeyDictionary[RedisStorage, Any] = weakref.WeakKeyDictionary()


def _settle_script(storage: RedisStorage) -> Any:
    """The settle script registered with this storage's client (EVALSHA, loaded again if Redis lost it)."""
    script = _SCRIPTS.get(storage)
    if script is None:
        script = _SCRIPTS[storage] = storage.get_connection().register_script(_SETTLE_SCRIPT.encode())
    return script


@functools.lru_cache(maxsize=64)
def _parsed(limit: str) -> RateLimitItem:
    """A limit string parsed once per process, not per request that builds a throttle."""
    return parse(limit)


def memory_fallback() -> RateLimiter:
    return MovingWindowRateLimiter(MemoryStorage())
