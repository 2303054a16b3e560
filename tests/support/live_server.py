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
from werkzeug.serving import BaseWSGIServer, make_server

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


@contextlib.contextmanager
def live_server(env: Mapping[str, str], *, instance_path: str, inline_delivery: bool = True) -> Iterator[LiveServer]:
    """Serve `create_app(env + ISSUER/PORT)` on a free port of 127.0.0.1 until the block ends.

    With `inline_delivery` (the default) email and SMS are sent inside the request that commits
    them, as in the embedded mode, even though REDIS_URL is set (rate limits stay in Redis): the
    app has no setting that forces inline delivery, so its RQ queue is swapped for the inline one.
    """
    server: BaseWSGIServer = make_server(HOST, 0, _unbound, threaded=True)
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
        server.app = app
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
