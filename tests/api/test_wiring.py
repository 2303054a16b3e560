"""The service factories build a request's services once, and nothing outlives the request."""

from __future__ import annotations

from idp import wiring


def test_a_request_builds_its_services_once_and_the_next_request_anew(app):
    with app.test_request_context("/api/auth/login", method="POST"):
        flow = wiring.login_flow()
        audit = wiring.audit_log()
        assert wiring.login_flow() is flow and wiring.audit_log() is audit
        assert wiring.account_service() is wiring.account_service()
    with app.test_request_context("/api/auth/login", method="POST"):
        assert wiring.login_flow() is not flow and wiring.audit_log() is not audit


def test_outside_a_request_every_call_builds_a_new_service(app):
    """The delivery worker's app context lives as long as it runs: a service (and its webhook
    lookup) kept there would go stale."""
    with app.app_context():
        assert wiring.audit_log() is not wiring.audit_log()
        assert wiring.login_flow() is not wiring.login_flow()
