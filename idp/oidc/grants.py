"""The grants of the token endpoint: authorization code (with PKCE), refresh token and client credentials.

Tokens come from the same `SessionService` as the JSON API's: an exchanged code opens a session
(refresh family) for the relying party, refresh rotates it with reuse detection, and access
tokens name it in `sid`, so revoking the session stops them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, UnauthorizedClientError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import request as flask_request
from sqlalchemy import select, update

from idp.accounts.models import User
from idp.accounts.sessions import BrowserSession, IssuedTokens
from idp.audit.service import ClientInfo
from idp.clock import as_utc, utcnow
from idp.errors import InvalidRefreshToken
from idp.extensions import db
from idp.models import affected
from idp.oidc.claims import acr_for, user_claims
from idp.oidc.models import AuthorizationCode, OAuthClient
from idp.security.digests import digest
from idp.wiring import audit_log, components, metrics, session_service

CODE_TTL = timedelta(minutes=5)  # RFC 6749 §4.1.2: at most 10 minutes
CONFIDENTIAL_METHODS = ["client_secret_basic", "client_secret_post"]
ALL_METHODS = [*CONFIDENTIAL_METHODS, "none"]


@dataclass(frozen=True)
class Approval:
    """What the authorization endpoint decided, attached to the request before the code is made."""

    browser_session: BrowserSession
    acr: str
    offline: bool


def _client_info() -> ClientInfo:
    return ClientInfo(ip_address=flask_request.remote_addr, user_agent=flask_request.headers.get("User-Agent"))


def token_response(
    issued: IssuedTokens, client: OAuthClient, *, refresh: bool, nonce: str | None = None
) -> dict[str, Any]:
    """The JSON of a token response, with an ID token (signed as the client registered) when
    `openid` was granted."""
    grant = issued.grant
    token: dict[str, Any] = {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": grant.scope,
    }
    if refresh:
        token["refresh_token"] = issued.refresh_token
    scopes = grant.scope.split()
    if "openid" in scopes:
        user = issued.user or db.session.get(User, grant.user_id)  # the refresh grant read it with the rotation
        assert user is not None
        token["id_token"] = components().id_tokens.issue(
            subject=grant.user_id,
            client_id=grant.client_id,
            auth_time=grant.auth_time,
            amr=grant.amr,
            acr=grant.acr or acr_for(grant.amr, None),  # sessions from before `acr` was kept: our own name
            session_id=grant.browser_session_id,
            nonce=nonce,
            access_token=issued.access_token,
            claims=user_claims(db.session, user, scopes),
            alg=client.id_token_signed_response_alg,
        )
    return token


class S256Only(CodeChallenge):
    """PKCE with S256 only (`plain` refused); required of public clients at the authorization request."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        if grant.request.client.row.is_public and not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256")
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    @staticmethod
    def validate_authorization_redirect_uri(request: Any, client: Any) -> str:
        """An unregistered redirect URI is refused in our words: Authlib's error quoted it in its
        description, which its own errors refuse to hold outside RFC 6749's error characters
        (§4.1.2.1), so a URI holding a quote, a control or a non-ASCII character was a 500."""
        asked = request.payload.redirect_uri
        if asked and not client.check_redirect_uri(asked):
            raise InvalidRequestError("The redirect URI is not registered for this client")
        return str(grants.AuthorizationCodeGrant.validate_authorization_redirect_uri(request, client))

    def save_authorization_code(self, code: str, request: Any) -> None:
        approval: Approval = request.approval
        data = request.payload.data
        now = utcnow()
        session = approval.browser_session
        db.session.add(
            AuthorizationCode(
                code_hash=digest(code),
                client_id=request.client.client_id,
                user_id=session.user.id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope,
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                auth_time=session.auth_time,
                amr=" ".join(session.amr),
                acr=approval.acr,
                browser_session_id=session.id,
                created_at=now,
                expires_at=now + CODE_TTL,
            )
        )
        audit_log().record(
            "authorize",
            user_id=session.user.id,
            client=_client_info(),
            details={"clientId": request.client.client_id, "scope": request.scope, "offline": approval.offline},
        )
        db.session.commit()

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCode | None:
        row = db.session.scalar(
            select(AuthorizationCode).where(
                AuthorizationCode.code_hash == digest(code), AuthorizationCode.client_id == client.client_id
            )
        )
        if row is None:
            return None
        if row.used_at is not None:
            _revoke_replayed(row.id)
            return None
        if as_utc(row.expires_at) <= utcnow():
            return None
        return row

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        # Claim the code first, atomically: of two concurrent exchanges only one gets tokens.
        claimed = affected(
            db.session.execute(
                update(AuthorizationCode)
                .where(AuthorizationCode.id == authorization_code.id, AuthorizationCode.used_at.is_(None))
                .values(used_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        )
        db.session.commit()
        if not claimed:  # another exchange of the same code got there first: a replay
            _revoke_replayed(authorization_code.id)
            raise InvalidGrantError("Invalid 'code' in request.")
        if not _still_signed_in(authorization_code):
            # a sign-out, a password change or a revocation since the code was issued ends what
            # the code stood for: its minutes in flight do not outlive the browser session
            raise InvalidGrantError("The sign-in this code was issued for has ended.")
        user = db.session.get(User, authorization_code.user_id)
        return user if user is not None and user.is_active else None

    def generate_token(self, user: User | None = None, scope: str | None = None, **kwargs: Any) -> dict[str, Any]:
        row: AuthorizationCode = self.request.authorization_code
        assert user is not None
        offline = "offline_access" in row.scope.split()
        issued = session_service().start(
            user,
            client=_client_info(),
            amr=row.amr.split(),
            client_id=row.client_id,
            auth_time=as_utc(row.auth_time),
            scope=row.scope,
            browser_session_id=None if offline else row.browser_session_id,
            acr=row.acr,
        )
        # the ID token's `sid` is the browser session even when the tokens outlive it
        issued = _with_browser_session(issued, row.browser_session_id)
        recorded = affected(
            db.session.execute(
                update(AuthorizationCode)
                .where(AuthorizationCode.id == row.id, AuthorizationCode.session_id.is_(None))
                .values(session_id=issued.session_id)
                .execution_options(synchronize_session=False)
            )
        )
        if not recorded:  # replayed while this exchange was running: what it issued is revoked too
            db.session.commit()
            session_service().revoke_session(issued.session_id, reason="authorization_code_reuse", client=_client_info())
            raise InvalidGrantError("Invalid 'code' in request.")
        _record_issue(user.id, row.client_id, "authorization_code", issued.session_id)
        refresh = kwargs.get("include_refresh_token", True)
        return token_response(issued, self.request.client.row, refresh=refresh, nonce=row.nonce)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Already marked used when it was claimed; kept so a replay can be recognised."""


REPLAYED = "replayed"  # a code's session_id when it was replayed before its first exchange had issued anything


def _revoke_replayed(code_id: str) -> None:
    """A code used twice: what its first use issued is revoked (RFC 6749 4.1.2). When the first
    exchange has not yet recorded its session, the code is marked instead, and that exchange,
    finding the mark where it records its session, revokes the session itself."""
    marked = affected(
        db.session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.id == code_id, AuthorizationCode.session_id.is_(None))
            .values(session_id=REPLAYED)
            .execution_options(synchronize_session=False)
        )
    )
    db.session.commit()
    if not marked:
        session_id = db.session.scalar(select(AuthorizationCode.session_id).where(AuthorizationCode.id == code_id))
        if session_id and session_id != REPLAYED:
            session_service().revoke_session(session_id, reason="authorization_code_reuse", client=_client_info())


def _still_signed_in(code: AuthorizationCode) -> bool:
    """Whether the browser session that approved the code is live, the code user's, and the user
    active: the check a bearer token's session passes (`SessionStatements.live_bearer`)."""
    if not code.browser_session_id:
        return False
    live = components().session_statements.live_bearer
    return live.first({"session_id": code.browser_session_id, "user_id": code.user_id, "now": utcnow()}) is not None


def _with_browser_session(issued: IssuedTokens, browser_session_id: str | None) -> IssuedTokens:
    return replace(issued, grant=replace(issued.grant, browser_session_id=browser_session_id))


def _record_issue(user_id: str | None, client_id: str, grant_type: str, session_id: str | None) -> None:
    audit_log().record(
        "token_issued",
        user_id=user_id,
        client=_client_info(),
        details={"clientId": client_id, "grantType": grant_type, "sessionId": session_id},
    )
    db.session.commit()


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Rotation and reuse detection are the session service's (shared with the JSON API)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client is not authorized to use 'grant_type=refresh_token'")
        if not self.request.form.get("refresh_token"):
            raise InvalidRequestError("Missing 'refresh_token' in request.")
        self.request.client = client

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client = self.request.client
        # RFC 6749 §6: `scope` may narrow the new tokens to part of the grant. More than was granted
        # is not refused: OAuth client libraries (Authlib, oauthlib) send the scope they were
        # configured with on every refresh, more than a partial grant gave them.
        try:
            issued = session_service().refresh(
                self.request.form["refresh_token"], client=_client_info(), client_id=client.client_id, with_claims=True,
                scope=self.request.form.get("scope"), allowed=client.row.scopes,
            )
        except InvalidRefreshToken:
            raise InvalidGrantError("The refresh token is invalid, expired, revoked or already used.") from None
        metrics().tokens_issued("refresh_token")
        return 200, token_response(issued, client.row, refresh=True), self.TOKEN_RESPONSE_HEADER


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        answer = super().create_token_response()
        metrics().tokens_issued("client_credentials")  # no session, no audit event: counted here
        return answer
