"""The revoked session-less access tokens each process keeps in memory for introspection: read
again at most every `ttl` seconds, a revocation of its own in effect at once."""

from __future__ import annotations

from idp.oidc.revoked import RevokedAccessTokens


class Store:
    def __init__(self) -> None:
        self.rows: list[str] = []
        self.reads = 0

    def load(self) -> list[str]:
        self.reads += 1
        return list(self.rows)


def test_the_set_is_read_once_per_ttl_however_often_it_is_asked():
    store, now = Store(), [100.0]
    revoked = RevokedAccessTokens(store.load, ttl=1.0, clock=lambda: now[0])
    assert all("a" not in revoked for _ in range(50)) and store.reads == 1
    store.rows.append("a")  # revoked by another process
    now[0] += 0.99
    assert "a" not in revoked and store.reads == 1  # not seen yet: within the ttl
    now[0] += 0.01
    assert "a" in revoked and store.reads == 2


def test_a_revocation_of_this_process_is_in_effect_at_once():
    store, now = Store(), [0.0]
    revoked = RevokedAccessTokens(store.load, ttl=1.0, clock=lambda: now[0])
    assert "b" not in revoked
    store.rows.append("b")
    revoked.add("b")
    assert "b" in revoked and store.reads == 1
    store.rows.clear()  # expired meanwhile, and deleted
    now[0] += 1.0
    assert "b" not in revoked and store.reads == 2
