"""Encryption at rest with key rotation (SECURITY.md 10)."""

import pytest
from cryptography.fernet import Fernet

from idp.security.secretbox import SecretBox, SecretBoxError


def test_round_trip_and_ciphertext_hides_the_plaintext():
    box = SecretBox([Fernet.generate_key().decode()])
    token = box.encrypt("JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in token
    assert box.decrypt(token) == "JBSWY3DPEHPK3PXP"


def test_rotation_new_key_first_old_key_still_decrypts_then_can_be_dropped():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = SecretBox([old]).encrypt("secret")
    both = SecretBox([new, old])
    assert both.decrypt(token) == "secret"
    rotated = both.rotate(token)
    assert SecretBox([new]).decrypt(rotated) == "secret"
    with pytest.raises(SecretBoxError):
        SecretBox([new]).decrypt(token)


def test_wrong_key_is_a_clear_error():
    token = SecretBox([Fernet.generate_key().decode()]).encrypt("x")
    with pytest.raises(SecretBoxError, match="ENCRYPTION_KEYS"):
        SecretBox([Fernet.generate_key().decode()]).decrypt(token)
