"""Client records are cached per process for a few seconds; misses are never cached."""

from __future__ import annotations

from idp.oidc.clients import ClientCache
from idp.oidc.models import OAuthClient


def test_a_cached_client_is_loaded_once_within_the_ttl_and_again_after_it():
    loads: list[str] = []
    row = OAuthClient(client_id="a", name="A")

    def load(client_id: str):
        loads.append(client_id)
        return row if client_id == "a" else None

    now = [100.0]
    cache = ClientCache(ttl=10, clock=lambda: now[0])
    assert cache.get("a", load) is row and cache.get("a", load) is row
    assert loads == ["a"]
    now[0] += 11
    cache.get("a", load)
    assert loads == ["a", "a"]
    cache.forget("a")
    cache.get("a", load)
    assert loads == ["a", "a", "a"]


def test_unknown_clients_are_not_cached_and_ttl_zero_turns_it_off():
    loads: list[str] = []

    def load(client_id: str):
        loads.append(client_id)
        return None if client_id == "x" else OAuthClient(client_id=client_id, name=client_id)

    cache = ClientCache(ttl=10)
    cache.get("x", load)
    cache.get("x", load)
    off = ClientCache(ttl=0)
    off.get("a", load)
    off.get("a", load)
    assert loads == ["x", "x", "a", "a"]
