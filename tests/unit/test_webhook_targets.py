"""Which addresses a webhook may be delivered to (idp.webhooks.targets.is_public)."""

from __future__ import annotations

import pytest

from idp.webhooks.targets import is_public


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("2002:808:808::1", True),  # 6to4 for 8.8.8.8: as public as the address it carries
        ("2002:c0a8:101::1", False),  # 6to4 for 192.168.1.1
        ("2002:a9fe:a9fe::", False),  # 6to4 for the cloud metadata address
        ("::ffff:10.0.0.1", False),
        ("fe80::1%eth0", False),
        ("127.0.0.1", False),
        ("fd00::1", False),
        ("fec0::1", False),  # site-local (RFC 3513, deprecated but still routed where configured)
    ],
)
def test_an_address_is_judged_by_the_ipv4_address_it_carries(address, public):
    assert is_public(address) is public
