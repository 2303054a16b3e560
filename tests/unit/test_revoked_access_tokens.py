"""The revoked session-less access tokens each process keeps in memory for introspection: asked of
the database at most every `ttl` seconds, and then only what was revoked since the newest revocation
seen (less an overlap); a revocation of its own process in effect at once; expired ones dropped."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from idp.oidc.revoked import EPOCH, OVERLAP, PRUNE_SECONDS, RevokedAccessTokens
from idp.security.tokens import AccessTokenClaims

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class Store:
    """The table: (jti, expires_at, revoked_at) rows; `asked` records each reading's `since`."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, datetime, datetime]] = []
        self.asked: list[datetime] = []

    def revoke(self, jti: str, at: datetime, minutes: int = 15) -> None:
        self.rows.append((jti, at + timedelta(minutes=minutes), at))

    def load(self, since: datetime, now: datetime) -> list[tuple[str, datetime, datetime]]:
        self.asked.append(since)
        return [row for row in self.rows if row[1] > now and row[2] > since]


def revoked_over(store: Store, clock: list[float], wall: list[datetime]) -> RevokedAccessTokens:
    return RevokedAccessTokens(store.load, ttl=1.0, clock=lambda: clock[0], now=lambda: wall[0])


def test_the_database_is_asked_once_per_ttl_however_often_a_token_is_checked():
    store, clock, wall = Store(), [100.0], [T0]
    revoked = revoked_over(store, clock, wall)
    assert all("a" not in revoked for _ in range(50)) and len(store.asked) == 1
    store.revoke("a", T0)  # by another process
    clock[0] += 0.99
    assert "a" not in revoked and len(store.asked) == 1  # not seen yet: within the ttl
    clock[0] += 0.01
    assert "a" in revoked and len(store.asked) == 2


def test_only_what_was_revoked_since_the_newest_seen_is_read_again():
    store, clock, wall = Store(), [0.0], [T0]
    revoked = revoked_over(store, clock, wall)
    for n in range(1000):
        store.revoke(f"old{n}", T0 - timedelta(minutes=1))
    assert "old0" in revoked and store.asked == [EPOCH]
    clock[0] += 1
    store.revoke("new", T0)
    assert "new" in revoked and "old999" in revoked
    assert store.asked[-1] == T0 - timedelta(minutes=1) - OVERLAP  # not the thousand again
    clock[0] += 1
    assert "new" in revoked and store.asked[-1] == T0 - OVERLAP


def test_a_revocation_committed_late_is_still_read():
    """Rows are read by their `revoked_at`: one stamped a little before the newest seen (a slower
    transaction, another host's clock) is within the overlap."""
    store, clock, wall = Store(), [0.0], [T0]
    revoked = revoked_over(store, clock, wall)
    store.revoke("first", T0)
    assert "first" in revoked
    store.revoke("late", T0 - OVERLAP + timedelta(seconds=1))
    clock[0] += 1
    assert "late" in revoked


def test_a_revocation_of_this_process_is_in_effect_at_once_and_expired_ones_are_dropped():
    store, clock, wall = Store(), [0.0], [T0]
    revoked = revoked_over(store, clock, wall)
    assert "b" not in revoked
    claims = AccessTokenClaims(sub="c", sid=None, client_id="c", scope="", jti="b", exp=int((T0 + timedelta(minutes=15)).timestamp()),
                               auth_time=None, amr=[])
    revoked.add(claims)
    assert "b" in revoked and len(store.asked) == 1
    wall[0] = T0 + timedelta(minutes=16)  # the token has expired (verification refuses it anyway)
    clock[0] += PRUNE_SECONDS
    assert "b" not in revoked


def test_only_the_first_reading_is_waited_for():
    """While one request reads, the others answer from what is known (within `ttl` + the query)."""
    store, clock, wall = Store(), [0.0], [T0]
    reading, release = threading.Event(), threading.Event()

    def slow_load(since, now):
        reading.set()
        release.wait(5)
        return store.load(since, now)

    revoked = RevokedAccessTokens(slow_load, ttl=1.0, clock=lambda: clock[0], now=lambda: wall[0])
    release.set()
    assert "x" not in revoked  # the first reading, waited for
    release.clear()
    reading.clear()
    clock[0] += 1
    reader = threading.Thread(target=lambda: "x" in revoked)
    reader.start()
    assert reading.wait(5)
    assert "x" not in revoked  # answered at once, from memory, while the other thread reads
    release.set()
    reader.join(5)
