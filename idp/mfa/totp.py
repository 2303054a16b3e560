"""TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps) as pure functions; the clock is an argument."""

from __future__ import annotations

import base64
import hmac
import io
from datetime import datetime

import pyotp
import qrcode
import qrcode.image.svg

STEP_SECONDS = 30
DRIFT_STEPS = 1
DIGITS = 6


def new_secret() -> str:
    """160 random bits, base32 (what authenticator apps expect)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=account, issuer_name=issuer)


def qr_data_url(uri: str) -> str:
    """An SVG QR code of the otpauth:// URI as a data URL (no image library needed).

    The mask pattern is fixed: choosing the "best" of the eight tripled the cost of a TOTP setup
    (25 ms of CPU), and scanners read every mask alike."""
    code = qrcode.QRCode(box_size=8, border=2, mask_pattern=0, image_factory=qrcode.image.svg.SvgPathImage)
    code.add_data(uri)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def step_at(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def verify(secret: str, code: str, *, now: datetime, last_step: int) -> int | None:
    """The time step the code belongs to, or None. Steps within ±1 of now count, but only steps
    after `last_step`: a code is accepted once, even in the neighbouring windows."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not (code.isascii() and code.isdigit()):  # isdigit alone admits "١٢٣٤٥٦"
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = step_at(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > last_step and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
