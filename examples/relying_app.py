"""A relying party for the provider: a small Flask app that signs its users in with OpenID Connect.

    make example            # or: .venv/bin/python examples/relying_app.py

serves http://localhost:5000. It uses Authlib's Flask client, which reads everything else (the
authorization, token, userinfo and logout endpoints, the signing keys) from the provider's
discovery document. By default it is the `demo` client that `flask --app wsgi demo seed`
registers: a public client (no secret) that proves itself with PKCE (S256) instead.

Settings, from the environment:

- IDP_ISSUER: the provider's issuer URL (default http://localhost:3001);
- CLIENT_ID: default `demo`;
- CLIENT_SECRET: empty (default) for a public client; set it for a confidential client, which then
  authenticates at the token endpoint with HTTP Basic (client_secret_basic);
- APP_URL: where this app is reached (default http://localhost:5000); its /callback and / must be
  the client's registered redirect URI and post-logout redirect URI.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, redirect, render_template_string, session, url_for
from werkzeug.wrappers import Response

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Demo relying app</title>
  <style>
    body { font: 16px/1.5 system-ui, sans-serif; max-width: 48rem; margin: 2rem auto; padding: 0 1rem; }
    pre { background: #f4f4f4; padding: 1rem; overflow-x: auto; }
    .error { color: #a00; }
  </style>
</head>
<body>
  <h1>Demo relying app</h1>
  <p>Signs in with the OpenID Connect provider at <code>{{ issuer }}</code> as client <code>{{ client_id }}</code>.</p>
  {% if error %}<p class="error">{{ error }}</p>{% endif %}
  {% if claims %}
    <p>Signed in as <strong>{{ claims.get("email") or claims.get("preferred_username") or claims["sub"] }}</strong>.
       <a href="{{ url_for('logout') }}">Sign out</a></p>
    <h2>ID token claims</h2>
    <pre>{{ claims | tojson(indent=2) }}</pre>
    <h2>Userinfo</h2>
    <pre>{{ userinfo | tojson(indent=2) }}</pre>
  {% else %}
    <p><a href="{{ url_for('login') }}">Sign in</a></p>
  {% endif %}
</body>
</html>
"""


def settings_from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    return {
        "IDP_ISSUER": (env.get("IDP_ISSUER") or "http://localhost:3001").rstrip("/"),
        "CLIENT_ID": env.get("CLIENT_ID") or "demo",
        "CLIENT_SECRET": env.get("CLIENT_SECRET") or None,
        "APP_URL": (env.get("APP_URL") or "http://localhost:5000").rstrip("/"),
    }


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment; `config` overrides it. Nothing is fetched from the
    provider here: Authlib loads the discovery document on the first sign-in."""
    app = Flask(__name__)
    app.config.update(settings_from_environment(os.environ))
    app.config.update(
        # The session holds the sign-in in progress (state, nonce, PKCE verifier) and the ID token.
        # A new key on every start: restarting signs everyone out of this demo.
        SECRET_KEY=secrets.token_urlsafe(32),
        # Cookies are per host, not per port: keep clear of the provider's cookies on localhost.
        SESSION_COOKIE_NAME="relying_app_session",
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.config.update(config or {})
    issuer = app.config["IDP_ISSUER"]
    client_secret = app.config["CLIENT_SECRET"]

    oauth = OAuth(app)
    provider = oauth.register(
        "idp",
        client_id=app.config["CLIENT_ID"],
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": "openid profile email",
            "code_challenge_method": "S256",  # PKCE, required of public clients
            "token_endpoint_auth_method": "client_secret_basic" if client_secret else "none",
        },
    )

    def page(**context: Any) -> str:
        return render_template_string(PAGE, issuer=issuer, client_id=app.config["CLIENT_ID"], **context)

    @app.get("/")
    def home() -> str:
        return page(claims=session.get("claims"), userinfo=session.get("userinfo"))

    @app.get("/login")
    def login() -> Response:
        # Authlib adds state, nonce and the PKCE challenge, and keeps their secrets in the session.
        return provider.authorize_redirect(app.config["APP_URL"] + "/callback")

    @app.get("/callback")
    def callback() -> str | tuple[str, int]:
        try:
            # Checks state, exchanges the code with the PKCE verifier, and verifies the ID token
            # (signature from the provider's JWKS, issuer, audience, expiry, nonce).
            token = provider.authorize_access_token()
            userinfo = provider.userinfo(token=token)
        except OAuthError as error:
            hint = ""
            if error.error == "mismatching_state":
                hint = f" (open this app at {app.config['APP_URL']}, the host its redirect URI names, and sign in again)"
            return page(error=f"Sign-in failed: {error.error}: {error.description or ''}{hint}"), 400
        session["id_token"] = token["id_token"]
        session["claims"] = dict(token["userinfo"])  # the ID token's claims, as Authlib verified them
        session["userinfo"] = dict(userinfo)
        return page(claims=session["claims"], userinfo=session["userinfo"])

    @app.get("/logout")
    def logout() -> Response:
        """Forget the sign-in here, then end it at the provider (RP-initiated logout), which sends
        the browser back to the post-logout redirect URI."""
        id_token = session.get("id_token")
        session.clear()
        end_session = provider.load_server_metadata().get("end_session_endpoint")
        if not end_session:
            return redirect(url_for("home"))
        params = {"client_id": app.config["CLIENT_ID"], "post_logout_redirect_uri": app.config["APP_URL"] + "/"}
        if id_token:
            params["id_token_hint"] = id_token
        return redirect(f"{end_session}?{urlencode(params)}")

    app.extensions["relying_app.provider"] = provider
    return app


def main() -> None:
    app = create_app()
    url = urlsplit(app.config["APP_URL"])
    print(f"relying app on {app.config['APP_URL']} for the provider at {app.config['IDP_ISSUER']}")
    app.run(host=url.hostname or "localhost", port=url.port or 5000)


if __name__ == "__main__":
    main()
