"""The OAuth 2.0 / OpenID Connect authorization server (Authlib), built per app: the grants of
`grants.py`, introspection, revocation and RP-initiated logout.

Access tokens are the RFC 9068 JWTs of `AccessTokens`; refresh tokens are the session families of
`SessionService`, so the API's first-party login and the relying parties share one token service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidRequestError,
    TokenMixin,
    UnsupportedGrantTypeError,
    UnsupportedResponseTypeError,
)
from authlib.oauth2.rfc6749.authenticate_client import authenticate_client_secret_basic
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import Flask
from flask import request as flask_request
from joserfc.jwk import KeySet
from sqlalchemy import Engine, select

from idp.accounts.models import Session
from idp.accounts.sessions import split_session_token
from idp.audit.service import ClientInfo
from idp.clock import as_utc, utcnow
from idp.extensions import db
from idp.oidc.clients import ClientCache, ClientRegistry
from idp.oidc.grants import (
    ALL_METHODS,
    CONFIDENTIAL_METHODS,
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    S256Only,
)
from idp.oidc.id_tokens import ID_TOKEN_ALGS
from idp.oidc.models import OAuthClient
from idp.oidc.revoked import RevokedAccessTokens, revoke_access_token
from idp.security.digests import digest
from idp.security.tokens import AccessTokenClaims, AccessTokens, InvalidAccessToken
from idp.wiring import audit_log, components

BASIC_CHALLENGE = 'Basic realm="oauth", '


class MissingGrantType(UnsupportedGrantTypeError):
    """Raised as the error Authlib's token endpoint answers (it answers no other before a grant is
    chosen), with the code and words of a missing parameter."""

    error = "invalid_request"

    def __init__(self) -> None:
        super().__init__(None)
        self.description = "grant_type is required"


class RegisteredClient(ClientMixin):
    """Authlib's view of an `OAuthClient` row."""

    def __init__(self, row: OAuthClient) -> None:
        self.row = row
        self.client_id = row.client_id

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        """None: every authorization request names its redirect URI (OpenID Connect Core 3.1.2.1:
        REQUIRED), so one without it gets the error page, not a code sent to the first registered."""
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = self.row.scopes
        if not scope:
            return " ".join(s for s in allowed if s != "offline_access")
        return " ".join(dict.fromkeys(s for s in scope.split() if s in allowed))  # each once, in order

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact match, but for the port of a loopback IP address (RFC 8252 7.3: a native app
        listens on whatever port the system gives it, and the server MUST allow any)."""
        return redirect_uri in self.row.redirect_uris or any(same_but_loopback_port(r, redirect_uri) for r in self.row.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        return ClientRegistry.secret_matches(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            return method == self.row.token_endpoint_auth_method
        if endpoint == "revocation" and self.row.is_public:
            return method == "none"  # RFC 7009 2.1: a public client names itself; it revokes only its own tokens
        return method in CONFIDENTIAL_METHODS and not self.row.is_public  # introspection, revocation

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.row.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {"post_logout_redirect_uris": self.row.post_logout_redirect_uris}


LOOPBACK_IPS = ("127.0.0.1", "::1")


def same_but_loopback_port(registered: str, asked: str) -> bool:
    """Whether `asked` is a registered http://127.0.0.1 or http://[::1] URI but for its port."""
    r, a = urlsplit(registered), urlsplit(asked)
    try:
        a.port  # noqa: B018 (a malformed port raises)
    except ValueError:
        return False
    loopback = r.scheme == a.scheme == "http" and r.hostname in LOOPBACK_IPS and a.hostname == r.hostname
    return loopback and (r.path, r.query, r.fragment, r.username) == (a.path, a.query, a.fragment, a.username)


@dataclass
class KnownToken(TokenMixin):
    """A token presented to introspection or revocation: an access-token JWT or a refresh token."""

    kind: str  # access_token | refresh_token
    client_id: str
    session: Session | None = None
    claims: AccessTokenClaims | None = None

    def check_client(self, client: RegisteredClient) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.claims.scope if self.claims else ""

    def get_expires_in(self) -> int:
        return 0

    def is_expired(self) -> bool:
        return False  # expired tokens are never returned by `find_token`

    def is_revoked(self) -> bool:
        return self.session is not None and self.session.revoked_at is not None


def find_token(
    tokens: AccessTokens, session_less_live: Callable[[AccessTokenClaims], bool], value: str, hint: str | None
) -> KnownToken | None:
    """The live token behind `value`, whichever kind it is (`session_less_live`: whether an access
    token without a session, a client-credentials one, still stands)."""
    order = ["refresh_token", "access_token"] if hint == "refresh_token" else ["access_token", "refresh_token"]
    for kind in order:
        if kind == "access_token":
            try:
                claims = tokens.verify(value)
            except InvalidAccessToken:
                continue
            session = db.session.get(Session, claims.sid) if claims.sid else None
            if claims.sid and (session is None or session.revoked_at is not None or as_utc(session.expires_at) <= utcnow()):
                return None
            if not claims.sid and not session_less_live(claims):
                return None
            return KnownToken("access_token", claims.client_id, session, claims)
        if (found := _live_refresh_token(value)) is not None:
            return found
    return None


def _live_refresh_token(value: str) -> KnownToken | None:
    """The live session whose current refresh token is `value`. A value of another shape (an
    access token with a bad or foreign signature, an expired one, garbage) has none: no query."""
    parts = split_session_token(value)
    if parts is None:
        return None
    session_id, _ = parts
    session = db.session.scalar(select(Session).where(Session.id == session_id, Session.token_hash == digest(value)))
    if session is not None and session.revoked_at is None and as_utc(session.expires_at) > utcnow():
        return KnownToken("refresh_token", session.client_id, session)
    return None


class HintIsOnlyAHint:
    """Introspection and revocation take a `token_type_hint` they do not know as no hint and look
    for the token among every kind (RFC 7662 and RFC 7009 §2.1: the search extends to all of
    them). Authlib refused one with 401 unsupported_token_type, with no WWW-Authenticate."""

    def check_params(self, request: Any, client: Any) -> None:
        if "token" not in request.form:
            raise InvalidRequestError()


class Introspection(HintIsOnlyAHint, IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> KnownToken | None:
        if token_type_hint != "refresh_token":
            # An access token only needs its session not revoked: one primary-key read, none
            # without a session (client_credentials). Refresh tokens take the general path.
            try:
                claims = self.server.tokens.verify(token_string)
            except InvalidAccessToken:
                return _live_refresh_token(token_string)
            if claims.sid:
                live = components().session_statements.session_live(claims.sid, utcnow())
            else:
                live = self.server.session_less_token_live(claims)
            if not live:
                return None
            return KnownToken("access_token", claims.client_id, None, claims)
        return find_token(self.server.tokens, self.server.session_less_token_live, token_string, token_type_hint)

    def check_permission(self, token: KnownToken, client: RegisteredClient, request: Any) -> bool:
        return not client.row.is_public

    def introspect_token(self, token: KnownToken) -> dict[str, Any]:
        if token.kind == "refresh_token":
            assert token.session is not None
            return {
                "active": True, "token_type": "refresh_token", "client_id": token.client_id, "sub": token.session.user_id,
                "exp": int(as_utc(token.session.expires_at).timestamp()), "sid": token.session.id,
            }
        assert token.claims is not None
        claims = token.claims
        payload = {"active": True, "token_type": "Bearer", "client_id": claims.client_id, "sub": claims.sub, "scope": claims.scope,
                   "exp": claims.exp, "iss": self.server.tokens.issuer, "jti": claims.jti}
        if claims.sid:
            payload["sid"] = claims.sid
        return payload


class Revocation(HintIsOnlyAHint, RevocationEndpoint):
    CLIENT_AUTH_METHODS = ALL_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> KnownToken | None:
        return find_token(self.server.tokens, self.server.session_less_token_live, token_string, token_type_hint)

    def revoke_token(self, token: KnownToken, request: Any) -> None:
        """Revoking either token of a session ends the session (its refresh family and access
        tokens). A client-credentials JWT has no session: its `jti` is kept until it expires
        (`idp.oidc.revoked`), and introspection answers it inactive."""
        client = ClientInfo(ip_address=flask_request.remote_addr, user_agent=flask_request.headers.get("User-Agent"))
        if token.session is not None:
            if token.session.revoked_at is None:
                token.session.revoked_at = utcnow()
                token.session.revoke_reason = "revoked_by_client"
                audit_log().record(
                    "token_revoked", user_id=token.session.user_id, client=client,
                    details={"clientId": token.client_id, "tokenType": token.kind, "sessionId": token.session.id},
                )
                db.session.commit()
        elif token.claims is not None and revoke_access_token(db.session(), token.claims, utcnow()):
            audit_log().record(
                "token_revoked", user_id=None, client=client,
                details={"clientId": token.client_id, "tokenType": token.kind, "jti": token.claims.jti},
            )
            db.session.commit()
            self.server.revoked_access_tokens.add(token.claims)


class EndSession(EndSessionEndpoint):
    """RP-initiated logout: which redirect is allowed. Ending the session is the view's work."""

    def get_server_jwks(self) -> KeySet:
        return self.server.tokens.keys.snapshot().verifying

    def get_algorithms(self) -> list[str]:
        return list(ID_TOKEN_ALGS)

    def _validate_id_token_hint(self, id_token_hint: str) -> dict[str, Any]:
        """Authlib's check, after the provider's own (`IdTokens.read_hint`: this issuer's, typed as an
        ID token): an access token, signed by the same keys, would otherwise sign the user out at
        once for whoever holds one (a resource server)."""
        if components().id_tokens.read_hint(id_token_hint) is None:
            raise InvalidRequestError("id_token_hint is not an ID token of this provider")
        return dict(super()._validate_id_token_hint(id_token_hint))

    def end_session(self, end_session_request: Any) -> None:
        """Done by the logout view, which also clears the cookies."""


class IdentityAuthorizationServer(AuthorizationServer):
    def __init__(self, app: Flask, tokens: AccessTokens, clients: ClientCache, autocommit: Engine) -> None:
        self.tokens = tokens
        self.clients = clients
        self.revoked_access_tokens = RevokedAccessTokens.on(autocommit, utcnow)
        super().__init__(app, query_client=self._client, save_token=self._keep_nothing)

    def session_less_token_live(self, claims: AccessTokenClaims) -> bool:
        """A client-credentials access token (it has no session): not revoked, and its client still
        registered. From memory: the revocations and the client's record are kept, no query."""
        return claims.jti not in self.revoked_access_tokens and self._client(claims.client_id) is not None

    def _client(self, client_id: str) -> RegisteredClient | None:
        row = self.clients.get(client_id, lambda key: db.session.get(OAuthClient, key))
        return RegisteredClient(row) if row else None

    @staticmethod
    def _keep_nothing(token: dict[str, Any], request: Any) -> None:
        """Access tokens are self-contained JWTs; refresh tokens live in their session row."""

    def get_authorization_grant(self, request: Any) -> Any:
        """An unsupported `response_type` is answered in our words: Authlib's error put the type
        asked for in its description, which its own errors refuse to hold outside RFC 6749's error
        characters (§4.1.2.1), so a type holding a quote, a control or a non-ASCII character was a
        ValueError (a 500). Sent back to the redirect URI when it is the client's (§4.1.2.1)."""
        if AuthorizationCodeGrant.check_authorization_endpoint(request):
            return super().get_authorization_grant(request)
        payload = request.payload
        client = self._client(payload.client_id) if payload.client_id else None
        back = payload.redirect_uri if client and payload.redirect_uri and client.check_redirect_uri(payload.redirect_uri) else None
        raise UnsupportedResponseTypeError(payload.response_type, "response_type must be code", redirect_uri=back)

    def get_token_grant(self, request: Any) -> Any:
        """A token request without `grant_type` misses a required parameter: `invalid_request`
        (RFC 6749 §5.2), where Authlib answered `unsupported_grant_type` for no type at all."""
        if not request.payload.grant_type:
            raise MissingGrantType()
        return super().get_token_grant(request)

    def handle_response(self, status: int, body: Any, headers: Any) -> Any:
        """Authlib's Basic challenge (a client that failed HTTP Basic authentication, RFC 6749
        §5.2) without the `realm` that the Basic scheme requires (RFC 7617 §2)."""
        headers = [
            (name, value.replace("Basic ", BASIC_CHALLENGE, 1) if name == "WWW-Authenticate" and value.startswith("Basic ") else value)
            for name, value in headers
        ]
        return super().handle_response(status, body, headers)

    def create_bearer_token_generator(self, config: Any) -> BearerTokenGenerator:
        def access_token(client: RegisteredClient, grant_type: str, user: Any = None, scope: str = "") -> str:
            subject = user.id if user is not None else client.client_id
            return self.tokens.issue(subject=subject, client_id=client.client_id, scope=scope or "")

        return BearerTokenGenerator(access_token, expires_generator=lambda client, grant_type: self.tokens.ttl)


def basic_credentials(query_client: Any, request: Any) -> Any:
    """`client_secret_basic`, where credentials that are not UTF-8 text name no client (401
    invalid_client): Authlib lets their UnicodeDecodeError through, a 500."""
    try:
        return authenticate_client_secret_basic(query_client, request)
    except UnicodeDecodeError:
        return None


def build_authorization_server(app: Flask, tokens: AccessTokens, clients: ClientCache, autocommit: Engine) -> IdentityAuthorizationServer:
    server = IdentityAuthorizationServer(app, tokens, clients, autocommit)
    server.register_client_auth_method("client_secret_basic", basic_credentials)
    server.register_grant(AuthorizationCodeGrant, [S256Only(required=True)])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(Introspection)
    server.register_endpoint(Revocation)
    server.register_endpoint(EndSession)
    return server
