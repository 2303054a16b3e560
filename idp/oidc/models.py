"""Relying parties (OAuth 2.0 / OpenID Connect clients), their authorization codes and the consents users gave them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models import created_column, id_column


class OAuthClient(db.Model):  # type: ignore[name-defined]
    """A registered application. Confidential clients keep only the SHA-256 digest of their
    256-bit secret; public clients have none and must use PKCE."""

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_secret_hash: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    grant_types: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    scopes: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32), nullable=False)
    first_party: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    require_mfa: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # OpenID Connect Dynamic Client Registration's `id_token_signed_response_alg`: RS256 unless
    # the client chose ES256 (smaller tokens, several times cheaper to sign)
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(10), nullable=False, default="RS256", server_default="RS256")
    created_at: Mapped[datetime] = created_column()

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"


class AuthorizationCode(db.Model):  # type: ignore[name-defined]
    """A code handed to a client's redirect URI: single use, short-lived, bound to the client,
    the redirect URI and the PKCE challenge. Only its digest is kept. `session_id` is the session
    its exchange opened, so a second use can revoke what the first one issued."""

    __tablename__ = "authorization_codes"

    id: Mapped[str] = id_column()
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    redirect_uri: Mapped[str] = mapped_column(String(2000), nullable=False)
    scope: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    nonce: Mapped[str | None] = mapped_column(String(500))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    auth_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    amr: Mapped[str] = mapped_column(String(100), nullable=False)
    acr: Mapped[str] = mapped_column(String(200), nullable=False)
    browser_session_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = created_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    session_id: Mapped[str | None] = mapped_column(String(36))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


class Consent(db.Model):  # type: ignore[name-defined]
    """The scopes a user allowed a client; asked again only for scopes beyond these."""

    __tablename__ = "oauth_consents"
    __table_args__ = (UniqueConstraint("user_id", "client_id", name="uq_oauth_consents_user_client"),)

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=False)
    scopes: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = created_column()


class RevokedAccessToken(db.Model):  # type: ignore[name-defined]
    """A session-less access token (client_credentials) revoked by its client before it expired
    (RFC 7009): introspection answers it inactive. Tokens of a session end with their session. A
    row is useless once the token has expired, and is deleted by the next revocation."""

    __tablename__ = "revoked_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)  # each process reads what is new
