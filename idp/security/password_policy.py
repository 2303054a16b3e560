"""Password policy: length, the four character classes the old service required, and a breach list."""

from __future__ import annotations

import functools
import string

MIN_LENGTH = 8
MAX_LENGTH = 128


@functools.cache
def common_passwords() -> frozenset[str]:
    """The 30,000 most common leaked passwords shipped with zxcvbn (lower case)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problems(password: str, *, email: str = "", username: str = "") -> list[str]:
    """Reasons the password is refused, empty when it is acceptable. Nothing is truncated."""
    if len(password) < MIN_LENGTH:
        return [f"must be at least {MIN_LENGTH} characters"]
    if len(password) > MAX_LENGTH:
        return [f"must be at most {MAX_LENGTH} characters"]
    problems = []
    classes = (
        (any(c.islower() for c in password), "a lower-case letter"),
        (any(c.isupper() for c in password), "an upper-case letter"),
        (any(c.isdigit() for c in password), "a digit"),
        (any(not c.isalnum() and not c.isspace() or c in string.punctuation for c in password), "a symbol"),
    )
    missing = [name for present, name in classes if not present]
    if missing:
        problems.append("must contain " + ", ".join(missing))
    lowered = password.lower()
    if lowered in common_passwords() or _strip_decoration(lowered) in common_passwords():
        problems.append("is too common (it appears in lists of breached passwords)")
    for identity in (username.lower(), email.lower().split("@")[0]):
        if len(identity) >= 3 and identity in lowered:
            problems.append("must not contain your username or email")
            break
    return problems


def _strip_decoration(lowered: str) -> str:
    """'Password1!' is 'password' with the usual decoration; strip trailing digits and symbols."""
    return lowered.rstrip(string.digits + string.punctuation)
