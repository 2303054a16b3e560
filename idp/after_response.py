"""Work that runs once the answer has been sent, so that its cost does not show in the answer's
timing: asking for a password reset answers at once, and whether the address has an account (a
lookup, a link, an email) is settled afterwards (SECURITY.md 3).

The WSGI server closes the response once it has written the body, and the response's close
callbacks run then, in the same worker thread: the client already holds the whole answer. The work
runs in an app context of its own (a new database session, a new `g`), never in the request's,
and logs under the request's id (whose context has ended by then).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, Response, g

from idp.observability.logs import current_request_id

log = logging.getLogger(__name__)

Work = Callable[[], None]


def after_response(work: Work) -> None:
    """Run `work` after this request's answer has been sent; an error answer (4xx, 5xx) drops it."""
    g.setdefault("after_response", []).append(work)


def install_after_response(app: Flask) -> None:
    @app.after_request
    def hand_over(response: Response) -> Response:
        works: list[Work] | None = g.pop("after_response", None)
        if works and response.status_code < 400:
            request_id = current_request_id.get()
            response.call_on_close(lambda: _run(app, works, request_id))
        return response


def _run(app: Flask, works: list[Work], request_id: str | None) -> None:
    context = current_request_id.set(request_id)
    try:
        with app.app_context():
            for work in works:
                try:
                    work()
                except Exception:
                    # the answer is gone: nobody is left to tell but the operator
                    log.exception("work after the response failed: %s", getattr(work, "__qualname__", work))
    finally:
        current_request_id.reset(context)
