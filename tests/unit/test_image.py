"""The container image holds what the app reads at run time."""

from __future__ import annotations

import re
from pathlib import Path

from idp.config import DEFAULT_TRANSLATIONS_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_the_image_copies_every_folder_the_app_reads_at_run_time():
    """translations/ was left out: a language added as the README says stayed English in containers."""
    copied = set(re.findall(r"^COPY (?:--\S+ )*(\S+) \./\1$", (ROOT / "Dockerfile").read_text(), re.M))
    needed = {"idp", "migrations", "templates", "static", DEFAULT_TRANSLATIONS_DIR.relative_to(ROOT).as_posix()}
    assert needed <= copied, needed - copied
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")}
    assert not needed & ignored
