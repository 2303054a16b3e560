"""The provider's metadata (OpenID Connect Discovery 1.0, RFC 8414), built once per app."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from idp.oidc.claims import ACR_VALUES_SUPPORTED, CLAIMS_SUPPORTED
from idp.oidc.clients import AUTH_METHODS, GRANT_TYPES, SCOPES
from idp.oidc.grants import ALL_METHODS, CONFIDENTIAL_METHODS
from idp.oidc.id_tokens import ID_TOKEN_ALGS

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"


def provider_metadata(issuer: str) -> dict[str, Any]:
    """Only what the provider really does: every value here is exercised by the tests."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "jwks_uri": f"{issuer}{JWKS_PATH}",
        "end_session_endpoint": f"{issuer}/oauth/logout",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ID_TOKEN_ALGS),
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_METHODS,
        "revocation_endpoint_auth_methods_supported": ALL_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS_SUPPORTED,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "acr_values_supported": ACR_VALUES_SUPPORTED,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "display_values_supported": ["page", "popup", "touch"],
        "claim_types_supported": ["normal"],
        "ui_locales_supported": ["en"],
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": False,
        "authorization_response_iss_parameter_supported": True,
    }


class StaticDocument:
    """A JSON document served as pre-serialised bytes with a strong ETag."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.body = json.dumps(document, separators=(",", ":")).encode()
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'
