"""TOTP as pure functions (RFC 6238 with ±1 step, each step once) and its QR code."""

from __future__ import annotations

import base64
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp

from idp.mfa import totp

NOW = datetime(2026, 11, 25, 12, 0, 10, tzinfo=UTC)


def test_rfc6238_codes_within_one_step_and_only_after_the_last_used_step():
    secret = totp.new_secret()
    step = totp.step_at(NOW)
    for offset, expected in [(-60, None), (-30, step - 1), (0, step), (30, step + 1), (60, None)]:
        code = pyotp.TOTP(secret).at(NOW + timedelta(seconds=offset))
        assert totp.verify(secret, code, now=NOW, last_step=0) == expected, offset
    assert totp.verify(secret, pyotp.TOTP(secret).at(NOW), now=NOW, last_step=step) is None
    assert totp.verify(secret, pyotp.TOTP(secret).at(NOW + timedelta(seconds=30)), now=NOW, last_step=step) == step + 1


def test_malformed_codes_are_refused():
    secret = totp.new_secret()
    # digits of other scripts are digits to str.isdigit, and hmac.compare_digest raises on non-ASCII text
    for code in ["", "12345", "1234567", "abcdef", "12 34 5", "\u0661\u0662\u0663\u0664\u0665\u0666", "\u00b2" * 6]:
        assert totp.verify(secret, code, now=NOW, last_step=0) is None


def test_secrets_carry_160_bits():
    assert len(base64.b32decode(totp.new_secret())) == 20


def test_qr_code_scans_to_the_otpauth_uri(tmp_path: Path):
    """Decoded by a real scanner (zbar), since the mask pattern is fixed for speed."""
    assert shutil.which("rsvg-convert") and shutil.which("zbarimg"), "apt-get install librsvg2-bin zbar-tools (.ci/run does)"
    uri = totp.provisioning_uri(totp.new_secret(), account="alice@example.com", issuer="Example IdP")
    svg = base64.b64decode(totp.qr_data_url(uri).split(",", 1)[1])
    (tmp_path / "qr.svg").write_bytes(svg)
    subprocess.run(["rsvg-convert", "-b", "white", "-w", "400", str(tmp_path / "qr.svg"), "-o", str(tmp_path / "qr.png")], check=True)
    scanned = subprocess.run(["zbarimg", "-q", "--raw", str(tmp_path / "qr.png")], capture_output=True, text=True, check=True)
    assert scanned.stdout.strip() == uri
