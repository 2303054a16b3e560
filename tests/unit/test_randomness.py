"""Random values come from the CSPRNG with enough bits; secrets compare in constant time (SECURITY.md 18)."""

import pathlib
import re

from idp.security.digests import digest, random_token, same

IDP = pathlib.Path(__file__).resolve().parents[2] / "idp"


def test_tokens_carry_256_bits_and_do_not_repeat():
    tokens = {random_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(t) == 43 for t in tokens)  # 32 bytes, url-safe base64


def test_digest_is_sha256_hex_and_comparison_is_exact():
    assert len(digest("x")) == 64 and digest("x") != digest("y")
    assert same(digest("x"), digest("x")) and not same(digest("x"), digest("y"))


def test_no_code_uses_the_predictable_random_module():
    offenders = [
        str(path.relative_to(IDP.parent))
        for path in IDP.rglob("*.py")
        if re.search(r"^\s*(import random\b|from random import)", path.read_text(), re.M)
    ]
    assert offenders == []
