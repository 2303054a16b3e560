"""Relying-party sessions for the OAuth scenarios: the authorization code flow (with PKCE) driven
through the hosted sign-in page with httpx, as a browser would.

One browser per seed account signs in once (authorize → /login → the login form with its CSRF
token → back through /oauth/authorize to the redirect URI with `?code=`); after that its SSO
cookie makes every further authorization request answer with a code at once. Each code is
exchanged at the token endpoint (client_secret_basic, code_verifier), which opens one session of
the relying party: its refresh token feeds the refresh-rotation scenario, its access token (scope
`openid profile email`) the userinfo scenario.

The service's cookies are `Secure` (`__Host-` names) outside development, and the cookie jar of
httpx keeps those away from http://127.0.0.1: each browser keeps its cookies itself and sends
them in a `Cookie` header.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import http.cookiejar
import re
import secrets
import ssl
from dataclasses import dataclass, field
from html import unescape
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

from bench.services import BenchError
from bench.stress import KEEPALIVE_EXPIRY_S, BenchUser

AUTHORIZE = "/oauth/authorize"
TOKEN = "/oauth/token"
SCOPE = "openid profile email"
REDIRECT_URI = "http://127.0.0.1:9/bench/callback"  # never opened: the code is read from the Location header
MAX_HOPS = 6
INPUT = re.compile(r"<input\b[^>]*>", re.S)
ATTR = re.compile(r'([\w-]+)="([^"]*)"')


def bench_client(base_url: str, concurrency: int, timeout: float) -> httpx.AsyncClient:
    """An async client without cookies (each browser keeps its own), holding up to `concurrency`
    keep-alive connections."""
    no_cookies = http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(
        base_url=base_url,
        trust_env=False,
        verify=_tls_context(),
        cookies=no_cookies,
        timeout=timeout,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=KEEPALIVE_EXPIRY_S),
    )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One for every client (never used on http://, but each client would build its own)."""
    return ssl.create_default_context()


@dataclass(frozen=True)
class RelyingParty:
    client_id: str
    client_secret: str

    @property
    def authorization(self) -> str:
        return "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()


def _hidden_fields(html: str) -> dict[str, str]:
    found = {}
    for tag in INPUT.findall(html):
        attrs = {k: unescape(v) for k, v in ATTR.findall(tag)}
        if attrs.get("type") == "hidden" and "name" in attrs:
            found[attrs["name"]] = attrs.get("value", "")
    return found


@dataclass
class Browser:
    """One user's browser at the provider: its cookies, kept by hand."""

    client: httpx.AsyncClient
    user: BenchUser
    rp: RelyingParty
    cookies: dict[str, str] = field(default_factory=dict)

    def _keep_cookies(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            parsed: SimpleCookie = SimpleCookie()
            parsed.load(header)
            for name, morsel in parsed.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        response = await self.client.request(method, url, headers=headers, **kwargs)
        self._keep_cookies(response)
        return response

    async def _follow(self, response: httpx.Response) -> httpx.Response:
        """Follow redirects on the provider; stop at a page or at the redirect to the relying party."""
        for _ in range(MAX_HOPS):
            if response.status_code not in (302, 303):
                return response
            location = response.headers["Location"]
            if location.startswith(REDIRECT_URI):
                return response
            response = await self._send("GET", urljoin(str(response.request.url), location))
        raise BenchError(f"more than {MAX_HOPS} redirects from {response.request.url}")

    async def code(self) -> tuple[str, str]:
        """An authorization code and its PKCE verifier, signing in first if this browser has no SSO session."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = secrets.token_urlsafe(12)
        query = urlencode({
            "response_type": "code", "client_id": self.rp.client_id, "redirect_uri": REDIRECT_URI, "scope": SCOPE,
            "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
        })
        response = await self._follow(await self._send("GET", f"{AUTHORIZE}?{query}"))
        if response.status_code == 200 and 'name="password"' in response.text:
            form = _hidden_fields(response.text)
            if "csrf_token" not in form or "next" not in form:
                raise BenchError(f"the sign-in page has no csrf_token or next field: {response.text[:300]}")
            form.update(identifier=self.user.username, password=self.user.password)
            response = await self._follow(await self._send("POST", "/login", data=form))
        location = response.headers.get("Location", "")
        if response.status_code not in (302, 303) or not location.startswith(REDIRECT_URI):
            raise BenchError(f"the authorization request did not end at the redirect URI ({response.status_code}): {response.text[:300]}")
        answer = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        if answer.get("state") != state or "code" not in answer:
            raise BenchError(f"the redirect to the client carries no code for this state: {location[:300]}")
        return answer["code"], verifier

    async def tokens(self) -> dict[str, Any]:
        """A fresh relying-party session: code, then the token endpoint."""
        code, verifier = await self.code()
        response = await self.client.post(
            TOKEN,
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
            headers={"Authorization": self.rp.authorization},
        )
        body = response.json() if response.status_code == 200 else {}
        if not (body.get("access_token") and body.get("refresh_token") and body.get("id_token")):
            raise BenchError(f"POST {TOKEN} (authorization_code) answered {response.status_code}: {response.text[:300]}")
        return dict(body)


async def _sessions(base_url: str, rp: RelyingParty, users: list[BenchUser], count: int, concurrency: int) -> list[dict[str, Any]]:
    async with bench_client(base_url, concurrency, timeout=30) as client:
        browsers = [Browser(client, user, rp) for user in users]
        # every browser signs in once (its first code), then codes come from its SSO session
        first = await asyncio.gather(*(b.tokens() for b in browsers))
        rest: list[dict[str, Any]] = []
        jobs = iter(range(max(0, count - len(first))))

        async def worker(browser: Browser) -> None:
            for _ in jobs:
                rest.append(await browser.tokens())

        await asyncio.gather(*(worker(browsers[n % len(browsers)]) for n in range(max(1, concurrency))))
    return [*first, *rest][:count]


def relying_party_sessions(base_url: str, rp: RelyingParty, users: list[BenchUser], count: int, *, concurrency: int) -> list[dict[str, Any]]:
    """`count` token responses of the authorization code flow (at least one per user), each its own session."""
    if not users:
        raise BenchError("no seed accounts to sign in with")
    return asyncio.run(_sessions(base_url, rp, users, max(count, len(users)), concurrency))
