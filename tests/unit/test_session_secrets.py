"""Session secrets: 256 random bits and a tag that tells the tokens this service issued from made-up ones."""

from __future__ import annotations

import base64

from idp.accounts.sessions import SessionSecrets, split_session_token

SESSION = "0b6f9c1e-5d43-4c7e-9a55-8f1f2c3d4e5a"


def test_an_issued_token_is_recognised_and_carries_256_random_bits():
    secrets = SessionSecrets("k" * 48)
    token = secrets.new_token(SESSION)
    session_id, secret = split_session_token(token) or ("", "")
    assert session_id == SESSION and len(base64.urlsafe_b64decode(secret + "==")) == 48  # 32 random + 16 tag
    assert secrets.issued(token)
    assert token != secrets.new_token(SESSION)


def test_a_token_is_not_recognised_for_another_session_key_or_tag():
    secrets = SessionSecrets("k" * 48)
    token = secrets.new_token(SESSION)
    other_session = "1" + SESSION[1:]
    assert not secrets.issued(other_session + token[36:])  # the tag binds the session id
    assert not SessionSecrets("j" * 48).issued(token)  # and the key
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert not secrets.issued(flipped)
    for made_up in (f"{SESSION}." + "A" * 43, f"{SESSION}." + "A" * 64, f"{SESSION}.!!!" + "A" * 61, "garbage", ""):
        assert not secrets.issued(made_up)
