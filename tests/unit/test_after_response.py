"""idp.after_response: work a request leaves for after its answer."""

from __future__ import annotations

import logging

from flask import Flask, g
from werkzeug.test import Client

from idp.after_response import after_response, install_after_response


def make_app(ran: list[str]) -> Flask:
    app = Flask(__name__)
    install_after_response(app)

    @app.get("/ok")
    def answered() -> str:
        g.seen_by_request = True
        after_response(lambda: ran.append(f"own context: {'seen_by_request' not in g}"))
        return "ok"

    @app.get("/refused")
    def refused() -> tuple[str, int]:
        after_response(lambda: ran.append("refused"))
        return "no", 400

    @app.get("/failing")
    def failing() -> str:
        after_response(lambda: 1 / 0)
        after_response(lambda: ran.append("after the failure"))
        return "ok"

    return app


def test_the_work_runs_once_the_answer_is_closed_in_an_app_context_of_its_own():
    ran: list[str] = []
    response = Client(make_app(ran)).get("/ok")
    assert response.get_data() == b"ok" and ran == []  # the answer is whole before the work starts
    response.close()  # what a WSGI server does once it has written the body
    assert ran == ["own context: True"]


def test_an_error_answer_drops_the_work():
    ran: list[str] = []
    Client(make_app(ran)).get("/refused", buffered=True)
    assert ran == []


def test_a_failing_work_is_logged_and_the_next_one_still_runs(caplog):
    ran: list[str] = []
    with caplog.at_level(logging.ERROR, logger="idp.after_response"):
        response = Client(make_app(ran)).get("/failing", buffered=True)
    assert response.status_code == 200 and ran == ["after the failure"]
    assert "work after the response failed" in caplog.text


def test_the_work_logs_under_the_request_id_of_its_request():
    """The request id's context ends when the app returns its answer, before the server closes it:
    the work's log lines still carry the id of the request that left it."""
    from idp.observability.logs import current_request_id

    seen: list[str | None] = []
    app = Flask(__name__)
    install_after_response(app)

    @app.get("/later")
    def later() -> str:
        after_response(lambda: seen.append(current_request_id.get()))
        return "ok"

    inner = app.wsgi_app

    def with_request_id(environ, start_response):  # as ObservedRequests sets and resets it
        context = current_request_id.set("req-1234")
        try:
            return inner(environ, start_response)
        finally:
            current_request_id.reset(context)

    app.wsgi_app = with_request_id  # type: ignore[method-assign]
    response = Client(app).get("/later")
    assert current_request_id.get() is None
    response.close()
    assert seen == ["req-1234"] and current_request_id.get() is None
