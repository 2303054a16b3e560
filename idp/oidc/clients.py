"""Registering and managing relying parties, for the CLI and the admin API."""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from idp.accounts.sessions import API_CLIENT_ID, BROWSER_CLIENT_ID, SessionService
from idp.audit.service import AuditLog, ClientInfo
from idp.clock import iso
from idp.errors import Conflict, NotFound, ValidationFailed
from idp.oidc.id_tokens import DEFAULT_ID_TOKEN_ALG, ID_TOKEN_ALGS
from idp.oidc.models import OAuthClient
from idp.security.digests import digest, random_token, same

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")  # never implicit or password
SCOPES = ("openid", "profile", "email", "phone", "offline_access")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")


@dataclass(frozen=True)
class ClientSpec:
    name: str
    redirect_uris: Sequence[str] = ()
    post_logout_redirect_uris: Sequence[str] = ()
    grant_types: Sequence[str] = ("authorization_code", "refresh_token")
    scopes: Sequence[str] = ("openid", "profile", "email")
    public: bool = False
    first_party: bool = False
    require_mfa: bool = False
    auth_method: str = "client_secret_basic"
    id_token_alg: str = DEFAULT_ID_TOKEN_ALG


def spec_of(client: OAuthClient) -> ClientSpec:
    return ClientSpec(
        name=client.name,
        redirect_uris=tuple(client.redirect_uris),
        post_logout_redirect_uris=tuple(client.post_logout_redirect_uris),
        grant_types=tuple(client.grant_types),
        scopes=tuple(client.scopes),
        public=client.is_public,
        first_party=client.first_party,
        require_mfa=client.require_mfa,
        auth_method=client.token_endpoint_auth_method,
        id_token_alg=client.id_token_signed_response_alg,
    )


def describe_client(client: OAuthClient) -> dict[str, Any]:
    """A client as the CLI prints it and the admin API returns it (never its secret)."""
    return {
        "clientId": client.client_id,
        "name": client.name,
        "public": client.is_public,
        "tokenEndpointAuthMethod": client.token_endpoint_auth_method,
        "redirectUris": client.redirect_uris,
        "postLogoutRedirectUris": client.post_logout_redirect_uris,
        "grantTypes": client.grant_types,
        "scopes": client.scopes,
        "firstParty": client.first_party,
        "requireMfa": client.require_mfa,
        "idTokenSignedResponseAlg": client.id_token_signed_response_alg,
        "createdAt": iso(client.created_at),
    }


def _check_uri(uri: str, field: str) -> str | None:
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (an out-of-range or non-numeric port raises only when read)
    except ValueError:  # an unclosed "[" of an IPv6 host, a port that is not one
        return f"{field}: {uri} is not a valid URL"
    if parts.fragment:
        return f"{field}: {uri} must not have a fragment"
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")):
        return None
    if parts.scheme and parts.scheme not in ("http", "https", "javascript", "data") and "." in parts.scheme:
        return None  # private-use scheme of a native app (reverse domain name, RFC 8252)
    return f"{field}: {uri} must be https (http only on localhost) or a reverse-domain app scheme"


NO_CLIENT = ClientInfo()  # a change from the command line: no address, no user agent
CLIENT_ID_ALPHABET = string.ascii_letters + string.digits


def new_client_id() -> str:
    """24 letters and digits (143 bits): never starts with "-", which a command line would read
    as an option, and needs no escaping in a URL."""
    return "".join(secrets.choice(CLIENT_ID_ALPHABET) for _ in range(24))


class ClientCache:
    """Client records kept in memory (PERFORMANCE.md): the token, introspection and revocation
    endpoints read their client on every request. A change takes effect in this process at once
    (`forget`) and in other processes within `ttl` seconds; `ttl=0` turns the cache off."""

    MAX_ENTRIES = 10_000  # unknown ids are never cached, so this bounds real clients only

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, OAuthClient]] = {}

    def get(self, client_id: str, load: Callable[[str], OAuthClient | None]) -> OAuthClient | None:
        now = self._clock()
        entry = self._entries.get(client_id)
        if entry is not None and now - entry[0] < self._ttl:
            return entry[1]
        row = load(client_id)
        if row is not None and self._ttl > 0:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[client_id] = (now, row)
        return row

    def forget(self, client_id: str) -> None:
        self._entries.pop(client_id, None)


# The provider's own sessions (the JSON API's, the browser's sign-in) are told apart by these ids:
# a client registered under one would pass for the provider itself (its tokens would be the JSON
# API's, its refresh token the browser's cookie).
RESERVED_CLIENT_IDS = frozenset({API_CLIENT_ID, BROWSER_CLIENT_ID})
CLIENT_ID_LENGTH = OAuthClient.__table__.c.client_id.type.length
NAME_LENGTH = OAuthClient.__table__.c.name.type.length
CLIENT_ID_FORM = re.compile(rf"[\x21-\x7e]{{1,{CLIENT_ID_LENGTH}}}")  # RFC 6749 A.1's VSCHAR, without the space


class ClientRegistry:
    """Every change is audited; `by` names the administrator (None: the command line)."""

    def __init__(
        self, db: DbSession, audit: AuditLog, sessions: SessionService, clock: Callable[[], datetime], cache: ClientCache | None = None
    ) -> None:
        self._db = db
        self._audit = audit
        self._sessions = sessions
        self._clock = clock
        self._cache = cache

    def _record(self, event: str, client_id: str, by: str | None, client: ClientInfo, **details: Any) -> None:
        self._audit.record(event, user_id=by, client=client, details={"clientId": client_id, **details})

    def _validate(self, spec: ClientSpec) -> list[str]:
        problems = [f"grant_types: {g} is not supported" for g in spec.grant_types if g not in GRANT_TYPES]
        problems += [f"scopes: {s} is not supported" for s in spec.scopes if s not in SCOPES]
        problems += [p for uri in spec.redirect_uris if (p := _check_uri(uri, "redirect_uris"))]
        problems += [p for uri in spec.post_logout_redirect_uris if (p := _check_uri(uri, "post_logout_redirect_uris"))]
        if "authorization_code" in spec.grant_types and not spec.redirect_uris:
            problems.append("redirect_uris: the authorization_code grant needs at least one")
        if spec.public and "client_credentials" in spec.grant_types:
            problems.append("grant_types: a public client cannot use client_credentials")
        if spec.auth_method not in AUTH_METHODS[:2] and not spec.public:
            problems.append(f"auth_method: {spec.auth_method} is not supported for a confidential client")
        if spec.id_token_alg not in ID_TOKEN_ALGS:
            problems.append(f"id_token_signed_response_alg: {spec.id_token_alg} is not supported ({', '.join(ID_TOKEN_ALGS)})")
        if not spec.name.strip():
            problems.append("name: is required")
        elif len(spec.name.strip()) > NAME_LENGTH:
            problems.append(f"name: at most {NAME_LENGTH} characters")
        return problems

    def create(
        self, spec: ClientSpec, *, client_id: str | None = None, by: str | None = None, client: ClientInfo = NO_CLIENT
    ) -> tuple[OAuthClient, str | None]:
        """Register a client; returns it and its secret (shown once; None for a public client)."""
        problems = self._validate(spec)
        if problems:
            raise ValidationFailed(errors=problems)
        client_id = client_id or new_client_id()
        if not CLIENT_ID_FORM.fullmatch(client_id):
            raise ValidationFailed(errors=[f"client_id: 1 to {CLIENT_ID_LENGTH} printable ASCII characters, no space"])
        if client_id in RESERVED_CLIENT_IDS:
            raise ValidationFailed(errors=[f"client_id: {client_id} is the provider's own; choose another"])
        if self._db.get(OAuthClient, client_id):
            raise Conflict(f"client {client_id} exists")
        secret = None if spec.public else random_token()
        row = OAuthClient(
            client_id=client_id,
            client_secret_hash=digest(secret) if secret else None,
            name=spec.name.strip(),
            redirect_uris=list(spec.redirect_uris),
            post_logout_redirect_uris=list(spec.post_logout_redirect_uris),
            grant_types=list(spec.grant_types),
            scopes=list(spec.scopes),
            token_endpoint_auth_method="none" if spec.public else spec.auth_method,
            first_party=spec.first_party,
            require_mfa=spec.require_mfa,
            id_token_signed_response_alg=spec.id_token_alg,
            created_at=self._clock(),
        )
        self._db.add(row)
        self._record("client_created", client_id, by, client)
        self._db.commit()
        return row, secret

    def update(
        self, client_id: str, changes: Mapping[str, Any], *, by: str | None = None, client: ClientInfo = NO_CLIENT
    ) -> OAuthClient:
        """Change a client's settings (any ClientSpec field but `public`), checked as a whole. Commits."""
        row = self.get(client_id)
        spec = replace(spec_of(row), **changes)
        problems = self._validate(spec)
        if problems:
            raise ValidationFailed(errors=problems)
        row.name = spec.name.strip()
        row.redirect_uris = list(spec.redirect_uris)
        row.post_logout_redirect_uris = list(spec.post_logout_redirect_uris)
        row.grant_types = list(spec.grant_types)
        row.scopes = list(spec.scopes)
        row.first_party = spec.first_party
        row.require_mfa = spec.require_mfa
        row.id_token_signed_response_alg = spec.id_token_alg
        if not row.is_public:
            row.token_endpoint_auth_method = spec.auth_method
        self._record("client_updated", client_id, by, client, fields=sorted(changes))
        self._db.commit()
        self._forget(client_id)
        return row

    def get(self, client_id: str) -> OAuthClient:
        client = self._db.get(OAuthClient, client_id)
        if client is None:
            raise NotFound(f"No client {client_id}")
        return client

    def all(self) -> list[OAuthClient]:
        return list(self._db.scalars(select(OAuthClient).order_by(OAuthClient.created_at)))

    def delete(self, client_id: str, *, by: str | None = None, client: ClientInfo = NO_CLIENT) -> None:
        """Remove a client, its codes and consents; every session it holds ends (its refresh and
        access tokens stop working at once)."""
        self._db.delete(self.get(client_id))
        ended = self._sessions.end_all_of_client(client_id, reason="client_deleted")
        self._record("client_deleted", client_id, by, client, sessionsEnded=ended)
        self._db.commit()
        self._forget(client_id)

    def _forget(self, client_id: str) -> None:
        if self._cache is not None:
            self._cache.forget(client_id)

    def rotate_secret(self, client_id: str, *, by: str | None = None, client: ClientInfo = NO_CLIENT) -> str:
        row = self.get(client_id)
        if row.is_public:
            raise Conflict("a public client has no secret")
        secret = random_token()
        row.client_secret_hash = digest(secret)
        self._record("client_secret_rotated", client_id, by, client)
        self._db.commit()
        self._forget(client_id)
        return secret

    @staticmethod
    def secret_matches(client: OAuthClient, secret: str) -> bool:
        return client.client_secret_hash is not None and same(digest(secret), client.client_secret_hash)
