"""Relying parties (OAuth 2.0 / OpenID Connect clients)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models import created_column


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
    created_at: Mapped[datetime] = created_column()

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"
