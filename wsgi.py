"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`, `flask --app wsgi ...`.

A setting that cannot be used ends the process with its message alone, no traceback: the message
names the variable. Exit code 4 is gunicorn's "App failed to load", which stops the master
instead of starting workers again and again."""

import sys

from idp import create_app
from idp.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    print(f"Configuration error: {exc}", file=sys.stderr)
    raise SystemExit(4) from None
