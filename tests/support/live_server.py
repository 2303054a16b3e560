"""The app on a real HTTP server on loopback, for clients that cannot use Flask's test client:
Chromium through Playwright, and relying-party libraries that speak HTTP (`oic` uses `requests`).

The socket is bound first (port 0, so no other process can take the port in between), then the app
is built with ISSUER and PORT naming that port, and Werkzeug serves it from a daemon thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
from flask import Flask
from jinja2 import StrictUndefined
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from idp import create_app
from idp.delivery.queue import InlineDeliveryQueue
from idp.extensions import db

if TYPE_CHECKING:
    from tests.conftest import Outbox

HOST = "127.0.0.1"


@dataclass
class LiveServer:
    url: str  # http://127.0.0.1:PORT, no trailing slash; also the app's ISSUER
    app: Flask
    port: int

    @property
    def outbox(self) -> Outbox:
        """The console outbox of this server's app (email and SMS it delivered)."""
        from tests.conftest import Outbox

        return Outbox(self.app)


def _unbound(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"the app is not built yet\n"]


class _Answer:
    """An app's answer whose close runs once, whoever calls it first."""

    def __init__(self, answer: Any) -> None:
        self._answer = answer
        self._closed = False

    def __iter__(self) -> Any:
        return iter(self._answer)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if hasattr(self._answer, "close"):
                self._answer.close()


_answers = threading.local()  # the answer the current handler thread is sending


def _remembered(app: Any) -> Any:
    def wsgi(environ: dict[str, Any], start_response: Any) -> _Answer:
        answer = _answers.current = _Answer(app(environ, start_response))
        return answer

    return wsgi


class ClosesEveryAnswer(WSGIRequestHandler):
    """Werkzeug closes an answer after writing it and draining the socket; a client already gone by
    then (a browser following a redirect at once) makes that read fail, which Werkzeug swallows,
    skipping the close, and with it the work that runs after the answer (idp.after_response: the
    reset email of the forgotten-password page, whose answer is a redirect). gunicorn closes in a
    `finally` of its own; so does this handler, once the answer is sent (never twice)."""

    def run_wsgi(self) -> None:
        try:
            super().run_wsgi()
        finally:
            answer, _answers.current = getattr(_answers, "current", None), None
            if answer is not None:
                answer.close()


@contextlib.contextmanager
def live_server(env: Mapping[str, str], *, instance_path: str, inline_delivery: bool = True) -> Iterator[LiveServer]:
    """Serve `create_app(env + ISSUER/PORT)` on a free port of 127.0.0.1 until the block ends.

    With `inline_delivery` (the default) email and SMS are sent inside the request that commits
    them, as in the embedded mode, even though REDIS_URL is set (rate limits stay in Redis): the
    app has no setting that forces inline delivery, so its RQ queue is swapped for the inline one.
    """
    server: BaseWSGIServer = make_server(HOST, 0, _unbound, threaded=True, request_handler=ClosesEveryAnswer)
    port = server.port
    url = f"http://{HOST}:{port}"
    thread: threading.Thread | None = None
    app: Flask | None = None
    rq_queues: list[Any] = []
    try:
        app = create_app({**env, "ISSUER": url, "PORT": str(port)}, instance_path=instance_path, dotenv=False)
        app.jinja_env.undefined = StrictUndefined
        components = app.extensions["idp"]
        rq_queues = getattr(components.delivery_queue, "queues", [])
        if inline_delivery:
            components.delivery_queue = InlineDeliveryQueue(components.senders)
        server.app = _remembered(app)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"live-server-{port}", daemon=True
        )
        thread.start()
        yield LiveServer(url=url, app=app, port=port)
    finally:
        if thread is not None:
            server.shutdown()  # stops accepting; serve_forever closes the socket as it returns
            thread.join(timeout=10)
        else:
            server.server_close()
        if app is not None:
            with app.app_context():
                db.engine.dispose()
            app.extensions["idp"].autocommit.dispose()
            for queue in rq_queues:
                with contextlib.suppress(redis.RedisError):
                    queue.delete(delete_jobs=True)
