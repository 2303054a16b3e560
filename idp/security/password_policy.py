"""Password policy: length, the four character classes the old service required, and a breach list."""

from __future__ import annotations

import functools
import string

MIN_LENGTH = 8
MAX_LENGTH = 128

# The reasons, in the JSON API's words (English); the hosted pages translate them (idp/web/registration.py)
TOO_SHORT = f"must be at least {MIN_LENGTH} characters"
TOO_LONG = f"must be at most {MAX_LENGTH} characters"
MUST_CONTAIN = "must contain "  # then the missing classes, joined by ", "
LOWER, UPPER, DIGIT, SYMBOL = "a lower-case letter", "an upper-case letter", "a digit", "a symbol"
TOO_COMMON = "is too common (it appears in lists of breached passwords)"
CONTAINS_IDENTITY = "must not contain your username or email"
SAME_AS_CURRENT = "must differ from the current password"
_ASCII_LETTERS_AND_DIGITS = frozenset(string.ascii_letters + string.digits)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The 30,000 most common leaked passwords shipped with zxcvbn (lower case)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problems(password: str, *, email: str = "", username: str = "") -> list[str]:
    """Reasons the password is refused, empty when it is acceptable. Nothing is truncated."""
    if len(password) < MIN_LENGTH:
        return [TOO_SHORT]
    if len(password) > MAX_LENGTH:
        return [TOO_LONG]
    problems = []
    # Each class takes at least what the old service's did ([a-z], [A-Z], [0-9], and a symbol being
    # anything but those), so no password it accepted is refused here (nor one its clients' own
    # checks pass): a letter of any script counts as a letter, and a space, "ñ" or "€" as a symbol.
    classes = (
        (any(c.islower() for c in password), LOWER),
        (any(c.isupper() for c in password), UPPER),
        (any(c.isdigit() for c in password), DIGIT),
        (any(c not in _ASCII_LETTERS_AND_DIGITS for c in password), SYMBOL),
    )
    missing = [name for present, name in classes if not present]
    if missing:
        problems.append(MUST_CONTAIN + ", ".join(missing))
    lowered = password.lower()
    if lowered in common_passwords() or _strip_decoration(lowered) in common_passwords():
        problems.append(TOO_COMMON)
    for identity in (username.lower(), email.lower().split("@")[0]):
        if len(identity) >= 3 and identity in lowered:
            problems.append(CONTAINS_IDENTITY)
            break
    return problems


def _strip_decoration(lowered: str) -> str:
    """'Password1!' is 'password' with the usual decoration; strip trailing digits and symbols."""
    return lowered.rstrip(string.digits + string.punctuation)
