"""The bare route every figure is compared with: `gunicorn -c gunicorn.conf.py bench.bare_app:app`."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "ok"
