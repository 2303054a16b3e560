"""Per-account login throttling that holds across IP addresses."""

from __future__ import annotations

from limits import RateLimitItem, parse
from limits.strategies import RateLimiter


class LoginThrottle:
    """Counts failed logins per account in the rate-limit storage (Redis, or memory when embedded).

    Keyed by the account id when the account exists and by the normalised identifier when it does
    not, so both cases throttle alike and nothing tells them apart.
    """

    def __init__(self, strategy: RateLimiter, limit: str, prefix: str) -> None:
        self._strategy = strategy
        self._limit: RateLimitItem = parse(limit)
        self._namespace = f"{prefix}:login-account"

    def blocked(self, account_key: str) -> bool:
        return not self._strategy.test(self._limit, self._namespace, account_key)

    def record_failure(self, account_key: str) -> None:
        self._strategy.hit(self._limit, self._namespace, account_key)
