"""The bare route every figure is compared with: `gunicorn -c gunicorn.conf.py bench.bare_app:app`.

`GET /argon2` is the Argon2 floor measured the way password login is: one argon2id verification
with the service's parameters and per-process concurrency (`PasswordHashing`, from the same
environment), behind the same gunicorn configuration and driven by the same wrk on the same cores.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, abort

if TYPE_CHECKING:
    from idp.security.passwords import PasswordHashing

app = Flask(__name__)
PASSWORD = "Floor-measurement-7!"
_floor: tuple[PasswordHashing, str] | None = None
_lock = threading.Lock()


@app.get("/")
def index() -> str:
    return "ok"


def _hashing() -> tuple[PasswordHashing, str]:
    global _floor
    with _lock:
        if _floor is None:
            from idp.config import Settings, environment_with_dotenv
            from idp.security.passwords import PasswordHashing

            with tempfile.TemporaryDirectory() as instance:
                root = Path(__file__).resolve().parent.parent
                settings = Settings.load(environment_with_dotenv(dict(os.environ), str(root / ".env")), Path(instance))
            hashing = PasswordHashing(settings.argon2)
            _floor = (hashing, hashing.hash(PASSWORD))
        return _floor


@app.get("/argon2")
def argon2_verify() -> str:
    hashing, hashed = _hashing()
    if not hashing.verify(hashed, PASSWORD):
        abort(500)
    return "ok"
