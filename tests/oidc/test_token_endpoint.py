"""Token endpoint (client_credentials), introspection (RFC 7662) and revocation (RFC 7009), driven by Authlib's
own OAuth 2.0 client over the WSGI app."""

from __future__ import annotations

from datetime import timedelta

import httpx2
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from tests.oidc.test_clients import create
from tests.support.statements import statements_run

ISSUER = "http://localhost:3001"


def client_for(app, made: dict, method: str = "client_secret_basic") -> OAuth2Client:
    return OAuth2Client(
        client_id=made["clientId"],
        client_secret=made["clientSecret"],
        token_endpoint_auth_method=method,
        transport=httpx2.WSGITransport(app=app),
        base_url=ISSUER,
    )


@pytest.fixture
def service(app) -> dict:
    return create(app, "--name", "Reports", "--grant", "client_credentials", "--scope", "openid", "--scope", "profile")


def test_client_credentials_returns_a_verifiable_jwt(app, service):
    token = client_for(app, service).fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials")
    assert token["token_type"] == "Bearer" and token["expires_in"] == 900 and "refresh_token" not in token
    jwks = KeySet.import_key_set(app.test_client().get("/.well-known/jwks.json").json)
    decoded = jwt.decode(token["access_token"], jwks, algorithms=["ES256"])
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.claims["client_id"] == decoded.claims["sub"] == service["clientId"]
    assert decoded.claims["scope"] == "openid profile"


def test_client_secret_post_when_registered_for_it(app):
    made = create(app, "--name", "Poster", "--grant", "client_credentials", "--auth-method", "client_secret_post")
    token = client_for(app, made, "client_secret_post").fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials")
    assert token["access_token"]
    with pytest.raises(Exception, match="invalid_client"):
        client_for(app, made, "client_secret_basic").fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials")


def test_a_client_secret_is_compared_in_constant_time(app, service, monkeypatch):
    """SECURITY.md 18: the presented secret's digest is compared with the stored one by
    hmac.compare_digest, not ==, whether it is right or wrong."""
    import hashlib
    import hmac

    compared: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def recorded(a, b):
        compared.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recorded)
    for secret in (service["clientSecret"] + "x", service["clientSecret"]):
        answer = app.test_client().post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(service["clientId"], secret))
        assert answer.status_code == (200 if secret == service["clientSecret"] else 401)
        presented = hashlib.sha256(secret.encode()).hexdigest().encode()
        assert any(presented in pair for pair in compared), secret
        compared.clear()


def test_wrong_secret_and_unregistered_grant_are_refused(app, service):
    bad = {**service, "clientSecret": service["clientSecret"] + "x"}
    with pytest.raises(Exception, match="invalid_client"):
        client_for(app, bad).fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials")
    web_app = create(app, "--name", "Web", "--redirect-uri", "https://web.example/cb")
    with pytest.raises(Exception, match="unauthorized_client"):
        client_for(app, web_app).fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials")
    password = app.test_client().post(
        "/oauth/token", data={"grant_type": "password", "username": "a", "password": "b"}, auth=(web_app["clientId"], web_app["clientSecret"])
    )
    assert password.status_code == 400 and password.json["error"] == "unsupported_grant_type"


def test_a_token_request_without_grant_type_misses_a_parameter(app, service):
    """RFC 6749 §5.2: a missing required parameter is invalid_request (Authlib answered
    unsupported_grant_type, as if some type had been named)."""
    for form in ({}, {"grant_type": ""}, {"scope": "openid"}):
        answer = app.test_client().post("/oauth/token", data=form, auth=(service["clientId"], service["clientSecret"]))
        assert answer.status_code == 400 and answer.json == {"error": "invalid_request", "error_description": "grant_type is required"}


@pytest.mark.parametrize("endpoint", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
@pytest.mark.parametrize("host", ["idp.internal:3001", "192.0.2.7", "\u00e9.example"])
def test_a_request_over_plain_http_gets_an_oauth_error(app, service, endpoint, host):
    """OAuth 2.0 needs TLS (RFC 6749 §1.6, §3.2): Authlib refuses plain HTTP but to a loopback host
    before its endpoints catch their errors, so a relying party calling over HTTP by another name
    (a container's, an address on the network, any Host header) got a 500. It is the error the
    authorization endpoint shows, in the JSON of RFC 6749 §5.2."""
    form = {"grant_type": "client_credentials", "token": "anything"}
    answer = app.test_client().post(endpoint, data=form, auth=(service["clientId"], service["clientSecret"]), headers={"Host": host})
    assert answer.status_code == 400
    assert answer.json == {"error": "insecure_transport", "error_description": "OAuth 2 MUST utilize https."}
    over_tls = app.test_client().post(endpoint, data=form, auth=(service["clientId"], service["clientSecret"]), base_url=f"https://{host}")
    assert over_tls.status_code == 200


@pytest.mark.parametrize("endpoint", ["/oauth/token", "/oauth/introspect", "/oauth/revoke", "/oauth/userinfo"])
def test_every_refusal_of_an_endpoint_a_program_calls_is_an_oauth_error(app, service, endpoint, monkeypatch):
    """A relying party reads the JSON of RFC 6749 §5.2 from these endpoints: a wrong method, a body
    over the size limit, a database that is down and a bug were answered with an HTML page."""
    from sqlalchemy.exc import OperationalError

    from idp.oidc.server import IdentityAuthorizationServer

    client = app.test_client()
    wrong_method = client.put(endpoint)
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["Allow"]
    assert wrong_method.json == {"error": "invalid_request", "error_description": "Method not allowed"}
    too_large = client.post(endpoint, data={"token": "x" * 200_000})
    assert too_large.status_code == 413
    assert too_large.json == {"error": "invalid_request", "error_description": "Request body too large"}

    def failing(failure: Exception):
        def fail(*args, **kwargs):
            raise failure

        return fail

    for method in ("create_token_response", "create_endpoint_response"):
        monkeypatch.setattr(IdentityAuthorizationServer, method, failing(OperationalError("SELECT 1", {}, Exception("gone"))))
    monkeypatch.setattr("idp.oidc.endpoints.bearer_token", failing(OperationalError("SELECT 1", {}, Exception("gone"))))
    unavailable = client.post(endpoint, data={"grant_type": "client_credentials", "token": "t"}, headers={"Authorization": "Bearer t"})
    assert unavailable.status_code == 503 and unavailable.headers["Retry-After"] == "1"
    assert unavailable.json == {"error": "temporarily_unavailable", "error_description": "The database is unavailable, please try again"}
    for method in ("create_token_response", "create_endpoint_response"):
        monkeypatch.setattr(IdentityAuthorizationServer, method, failing(RuntimeError("a bug")))
    monkeypatch.setattr("idp.oidc.endpoints.bearer_token", failing(RuntimeError("a bug")))
    broken = client.post(endpoint, data={"grant_type": "client_credentials", "token": "t"})
    assert broken.status_code == 500
    assert broken.json == {"error": "server_error", "error_description": "Internal server error"}


@pytest.mark.parametrize("endpoint", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
def test_a_failed_basic_authentication_is_challenged_with_a_realm(app, service, endpoint):
    """RFC 6749 §5.2: 401 with a WWW-Authenticate challenge of the scheme the client used; the Basic
    scheme's challenge requires `realm` (RFC 7617 §2), which Authlib's left out."""
    form = {"grant_type": "client_credentials", "token": "anything"}
    answer = app.test_client().post(endpoint, data=form, auth=(service["clientId"], service["clientSecret"] + "x"))
    assert answer.status_code == 401 and answer.json["error"] == "invalid_client"
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith('Basic realm="oauth", error="invalid_client", error_description="'), challenge


def test_requested_scopes_are_limited_to_the_registered_ones(app, service):
    token = client_for(app, service).fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials", scope="openid email")
    assert token["scope"] == "openid"


def test_introspection_of_access_and_refresh_tokens_and_of_revoked_sessions(app, service, api):
    oauth = client_for(app, service)
    own = oauth.fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials")["access_token"]
    active = oauth.introspect_token(f"{ISSUER}/oauth/introspect", token=own).json()
    assert active["active"] is True and active["client_id"] == service["clientId"] and active["iss"] == ISSUER
    registered = api.register("alice")
    user_access = registered.json["data"]["accessToken"]
    refresh = registered.headers["Set-Cookie"].split("refreshToken=")[1].split(";")[0]
    as_user = oauth.introspect_token(f"{ISSUER}/oauth/introspect", token=user_access).json()
    assert as_user["active"] is True and as_user["sub"] == registered.json["data"]["user"]["id"] and as_user["sid"]
    as_refresh = oauth.introspect_token(f"{ISSUER}/oauth/introspect", token=refresh, token_type_hint="refresh_token").json()
    assert as_refresh["active"] is True and as_refresh["token_type"] == "refresh_token"
    api.client.post("/api/auth/logout", headers=api.bearer(user_access))
    assert oauth.introspect_token(f"{ISSUER}/oauth/introspect", token=user_access).json() == {"active": False}
    assert oauth.introspect_token(f"{ISSUER}/oauth/introspect", token="garbage").json() == {"active": False}


def test_an_access_token_outliving_its_session_introspects_inactive(app, service, api):
    """Refreshed a minute before the session's absolute end (7 days), an access token lives 15
    minutes more: userinfo refused it once the session had ended, introspection said active."""
    import time_machine

    from idp.clock import utcnow

    oauth = client_for(app, service)
    registered = api.register("alice")
    refresh = registered.headers["Set-Cookie"].split("refreshToken=")[1].split(";")[0]
    start = utcnow()
    with time_machine.travel(start + timedelta(days=7, minutes=-1), tick=False):
        renewed = api.client.post("/api/auth/refresh", json={"refreshToken": refresh})
        assert renewed.status_code == 200, renewed.json
        access = renewed.json["data"]["accessToken"]
        assert oauth.introspect_token(f"{ISSUER}/oauth/introspect", token=access).json()["active"] is True
    with time_machine.travel(start + timedelta(days=7, minutes=1), tick=False):
        assert api.client.get("/api/auth/me", headers=api.bearer(access)).status_code == 401
        for hint in (None, "access_token", "refresh_token"):
            answer = oauth.introspect_token(f"{ISSUER}/oauth/introspect", token=access, token_type_hint=hint).json()
            assert answer == {"active": False}, hint


def test_a_deleted_clients_client_credentials_token_introspects_inactive(app, service):
    """Such a token has no session to end with the client: it introspected active for the rest of
    its fifteen minutes after its client was deleted."""
    from tests.admin.conftest import cli

    machine = create(app, "--name", "Reports", "--grant", "client_credentials", "--scope", "openid")
    access = client_for(app, machine).fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials")["access_token"]
    resource = client_for(app, service)
    assert resource.introspect_token(f"{ISSUER}/oauth/introspect", token=access).json()["active"] is True
    assert cli(app, "clients", "delete", machine["clientId"]).exit_code == 0
    for hint in (None, "access_token", "refresh_token"):
        assert resource.introspect_token(f"{ISSUER}/oauth/introspect", token=access, token_type_hint=hint).json() == {"active": False}


def test_a_token_type_hint_of_no_known_kind_is_no_hint(app, service, api):
    """RFC 7662 and RFC 7009 §2.1: the search extends to every kind of token. Refused with 401
    unsupported_token_type (and no WWW-Authenticate) before."""
    from idp.accounts.models import Session
    from idp.extensions import db

    oauth = client_for(app, service)
    own = oauth.fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials")["access_token"]
    assert oauth.introspect_token(f"{ISSUER}/oauth/introspect", token=own, token_type_hint="urn:x").json()["active"] is True
    refresh = api.register("alice").headers["Set-Cookie"].split("refreshToken=")[1].split(";")[0]
    with app.app_context():  # the client's own session
        db.session.execute(db.update(Session).values(client_id=service["clientId"]))
        db.session.commit()
    assert oauth.introspect_token(f"{ISSUER}/oauth/introspect", token=refresh, token_type_hint="urn:x").json()["active"] is True
    assert oauth.revoke_token(f"{ISSUER}/oauth/revoke", token=refresh, token_type_hint="urn:x").status_code == 200
    assert oauth.introspect_token(f"{ISSUER}/oauth/introspect", token=refresh).json() == {"active": False}


def test_a_token_of_no_known_shape_is_inactive_without_a_database_query(app, service):
    """A JWT this provider did not sign (or garbage) cannot be a refresh token either (those are
    `<session id>.<secret>`): introspection and revocation answer without asking the database."""
    oauth = client_for(app, service)
    own = oauth.fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials")["access_token"]
    assert oauth.introspect_token(f"{ISSUER}/oauth/introspect", token=own).json()["active"] is True  # the client is cached now
    stranger = ECKey.generate_key("P-256")
    header = dict(jwt.decode(own, KeySet.import_key_set(app.test_client().get("/.well-known/jwks.json").json)).header)
    forged = jwt.encode(header, {"iss": ISSUER, "sub": "x", "client_id": service["clientId"], "exp": 4102444800}, stranger)
    with statements_run() as seen:
        for token in (forged, "garbage", own + "x"):
            assert oauth.introspect_token(f"{ISSUER}/oauth/introspect", token=token).json() == {"active": False}
            assert oauth.revoke_token(f"{ISSUER}/oauth/revoke", token=token).status_code == 200
    assert seen == []


def test_introspection_needs_an_authenticated_confidential_client(app, service):
    own = client_for(app, service).fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials")["access_token"]
    anonymous = app.test_client().post("/oauth/introspect", data={"token": own})
    assert anonymous.status_code == 401 and anonymous.json["error"] == "invalid_client"
    spa = create(app, "--name", "SPA", "--public", "--redirect-uri", "http://localhost:5173/cb")
    public = app.test_client().post("/oauth/introspect", data={"token": own, "client_id": spa["clientId"]})
    assert public.status_code == 401


def test_revocation_answers_200_and_ends_only_the_clients_own_sessions(app, service, api):
    oauth = client_for(app, service)
    registered = api.register("alice")
    refresh = registered.headers["Set-Cookie"].split("refreshToken=")[1].split(";")[0]
    # another client's token is not this client's to revoke
    refused = oauth.revoke_token(f"{ISSUER}/oauth/revoke", token=refresh, token_type_hint="refresh_token")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    api.client.delete_cookie("refreshToken", path="/api/auth")
    assert api.client.post("/api/auth/refresh", json={"refreshToken": refresh}).status_code == 200
    unknown = oauth.revoke_token(f"{ISSUER}/oauth/revoke", token="never-issued")
    assert unknown.status_code == 200  # RFC 7009: unknown tokens are not an error


def test_a_client_revokes_its_own_sessions_and_it_is_audited(app, service, api):
    """Revoking either token of a session the client owns ends the session (RFC 7009), recorded as token_revoked."""
    from idp.accounts.models import Session
    from idp.extensions import db

    registered = api.register("alice")
    refresh = registered.headers["Set-Cookie"].split("refreshToken=")[1].split(";")[0]
    with app.app_context():  # hand the session to the client, as its own login will once the code flow exists
        db.session.execute(db.update(Session).values(client_id=service["clientId"]))
        db.session.commit()
    oauth = client_for(app, service)
    assert oauth.revoke_token(f"{ISSUER}/oauth/revoke", token=refresh, token_type_hint="refresh_token").status_code == 200
    api.client.delete_cookie("refreshToken", path="/api/auth")
    assert api.client.post("/api/auth/refresh", json={"refreshToken": refresh}).status_code == 401
    token = api.login("alice").json["data"]["accessToken"]
    actions = [e["action"] for e in api.client.get("/api/audit-logs", headers=api.bearer(token)).json["data"]["logs"]]
    assert "token_revoked" in actions


def test_a_revoked_client_credentials_token_is_inactive_until_it_expires(app, service):
    """RFC 7009 §2: revoking a session-less access token (client_credentials) is kept, so introspection
    answers it inactive; it was a no-op before, the token active for its 15 minutes. The client's other
    tokens stay active, a second revocation is still 200, and it is audited once."""
    from idp.audit.models import AuditEvent
    from idp.extensions import db

    oauth = client_for(app, service)
    revoked, kept = (oauth.fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials")["access_token"] for _ in range(2))
    assert oauth.introspect_token(f"{ISSUER}/oauth/introspect", token=revoked).json()["active"] is True
    for _ in range(2):
        assert oauth.revoke_token(f"{ISSUER}/oauth/revoke", token=revoked).status_code == 200
    assert oauth.introspect_token(f"{ISSUER}/oauth/introspect", token=revoked).json() == {"active": False}
    hinted = oauth.introspect_token(f"{ISSUER}/oauth/introspect", token=revoked, token_type_hint="refresh_token")
    assert hinted.json() == {"active": False}  # the general search finds it revoked too
    with statements_run() as seen:  # the revocations are kept in memory, read again at most once a second
        for _ in range(5):
            assert oauth.introspect_token(f"{ISSUER}/oauth/introspect", token=kept).json()["active"] is True
    assert len(seen) <= 1 and all("revoked_access_tokens" in statement for statement in seen)
    with app.app_context():
        events = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "token_revoked")).all()
        assert [(e.user_id, e.details["clientId"], e.details["tokenType"]) for e in events] == [(None, service["clientId"], "access_token")]


def test_another_clients_token_is_not_revoked(app, service):
    other = create(app, "--name", "Other", "--grant", "client_credentials", "--scope", "openid")
    token = client_for(app, service).fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials")["access_token"]
    refused = client_for(app, other).revoke_token(f"{ISSUER}/oauth/revoke", token=token)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert client_for(app, service).introspect_token(f"{ISSUER}/oauth/introspect", token=token).json()["active"] is True


def test_the_revocations_of_expired_tokens_are_deleted(app, service):
    """A kept `jti` is useless once its token has expired: the next revocation deletes it."""
    from datetime import UTC, datetime, timedelta

    from idp.extensions import db
    from idp.oidc.models import RevokedAccessToken

    with app.app_context():
        past = datetime.now(UTC) - timedelta(seconds=1)
        db.session.add(RevokedAccessToken(jti="expired", client_id=service["clientId"], expires_at=past, revoked_at=past))
        db.session.commit()
    oauth = client_for(app, service)
    token = oauth.fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials")["access_token"]
    assert oauth.revoke_token(f"{ISSUER}/oauth/revoke", token=token).status_code == 200
    with app.app_context():
        assert db.session.scalars(db.select(RevokedAccessToken.client_id)).all() == [service["clientId"]]
        assert db.session.get(RevokedAccessToken, "expired") is None
