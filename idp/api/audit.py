"""`/audit-logs`: the caller's own security events, newest first."""

from __future__ import annotations

from flask import Blueprint, Response, request

from idp.api.documented import documented
from idp.api.envelope import ok, parse
from idp.api.guard import identity, require_bearer
from idp.api.responses import AuditPage
from idp.api.schemas import PageQuery
from idp.api.users import audit_view, pagination_view
from idp.wiring import audit_log

bp = Blueprint("audit", __name__)


@bp.get("/audit-logs")
@documented(query=PageQuery, responses={200: AuditPage})
@require_bearer(scope="user:read")
def audit_logs() -> Response:
    query = parse(PageQuery, dict(request.args))
    page = audit_log().for_user(identity().user.id, page=query.page, limit=query.limit)
    return ok(
        {
            "logs": [audit_view(e, as_owner=True) for e in page.items],
            "pagination": pagination_view(page),
        }
    )
