"""An independent relying party: pyoidc (`oic`) against the provider on a live HTTP server.

Discovery, the code flow with PKCE, ID token validation (signature from the JWKS, iss, aud,
nonce, at_hash), userinfo, refresh rotation, introspection, revocation and RP-initiated logout are
all done by `oic` over real HTTP; the hosted sign-in and consent pages are driven by a
`requests.Session` that keeps the provider's cookies, as a browser would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from jwkest import BadSignature
from jwkest.jws import left_hash
from oic import rndstr
from oic.oauth2.grant import Token
from oic.oauth2.message import ErrorResponse
from oic.oic import Client
from oic.oic.message import (
    AccessTokenResponse,
    AuthorizationErrorResponse,
    AuthorizationResponse,
    EndSessionRequest,
    IdToken,
    OpenIDSchema,
    RegistrationResponse,
    TokenErrorResponse,
)
from oic.utils.authn.client import CLIENT_AUTHN_METHOD

from tests.conftest import Api
from tests.oidc.conftest import hidden_fields
from tests.support.live_server import LiveServer

REDIRECT_URI = "https://rp.example/cb"
POST_LOGOUT_URI = "https://rp.example/out"
SCOPE = "openid profile email offline_access"
PASSWORD = Api.PASSWORD
TIMEOUT = 10


class HostedPages:
    """The provider's pages as a browser sees them: cookies kept, redirects on the provider's host
    followed; a redirect anywhere else (the relying party) ends the walk and is returned."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.http = requests.Session()
        self.page: requests.Response | None = None

    def _on_provider(self, url: str) -> bool:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}" == self.server.url

    def open(self, url: str, *, data: dict[str, str] | None = None) -> requests.Response:
        url = urljoin(self.server.url + "/", url)
        if data is None:
            response = self.http.get(url, allow_redirects=False, timeout=TIMEOUT)
        else:
            response = self.http.post(url, data=data, allow_redirects=False, timeout=TIMEOUT)
        while response.is_redirect:
            target = urljoin(response.url, response.headers["Location"])
            if not self._on_provider(target):
                break
            response = self.http.get(target, allow_redirects=False, timeout=TIMEOUT)
        self.page = response
        return response

    @property
    def html(self) -> str:
        assert self.page is not None
        return self.page.text

    def submit(self, path: str, **fields: str) -> requests.Response:
        """Post the current page's form: its hidden fields (the CSRF token, carried parameters) and `fields`."""
        return self.open(path, data={**hidden_fields(self.html), **fields})

    def sign_in(self, identifier: str = "alice", password: str = PASSWORD) -> requests.Response:
        assert self.page is not None and self.page.status_code == 200 and "Sign in" in self.html, self.html[:500]
        assert "csrf_token" in hidden_fields(self.html)
        return self.submit("/login", identifier=identifier, password=password)

    def consent(self) -> requests.Response:
        assert self.page is not None and self.page.status_code == 200 and "would like to" in self.html, self.html[:500]
        return self.submit("/oauth/authorize", decision="allow")


@dataclass
class Flow:
    """One authorization request of the relying party: what it must check in the answers."""

    state: str
    nonce: str
    verifier: str = ""
    url: str = ""


@dataclass
class PyoidcRP:
    """A client registered by our CLI, as pyoidc knows it after discovery."""

    server: LiveServer
    registered: dict[str, Any]
    client: Client = field(init=False)
    discovered: Any = field(init=False)
    id_token_alg: str = "RS256"

    def __post_init__(self) -> None:
        self.client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
        self.discovered = self.client.provider_config(self.server.url)
        self.client.store_registration_info(
            RegistrationResponse(
                client_id=self.registered["clientId"],
                client_secret=self.registered["clientSecret"],
                redirect_uris=[REDIRECT_URI],
                post_logout_redirect_uris=[POST_LOGOUT_URI],
                token_endpoint_auth_method="client_secret_basic",
                id_token_signed_response_alg=self.id_token_alg,
            )
        )
        self.client.redirect_uris = [REDIRECT_URI]

    @property
    def client_id(self) -> str:
        return self.registered["clientId"]

    @property
    def basic_auth(self) -> tuple[str, str]:
        return self.registered["clientId"], self.registered["clientSecret"]

    def authorization_url(self, **extra: str) -> Flow:
        """An authorization request built by pyoidc, with PKCE (S256) and a nonce."""
        flow = Flow(state=rndstr(16), nonce=rndstr(16))
        challenge, flow.verifier = self.client.add_code_challenge()
        args = {
            "response_type": "code",
            "scope": SCOPE,
            "redirect_uri": REDIRECT_URI,
            "state": flow.state,
            "nonce": flow.nonce,
            **challenge,
            **extra,
        }
        request = self.client.construct_AuthorizationRequest(request_args=args)
        flow.url = request.request(self.client.authorization_endpoint)
        return flow

    def callback(self, response: requests.Response, flow: Flow) -> Any:
        """The redirect back to us, parsed (and its state checked) by pyoidc."""
        assert response.status_code in (302, 303), (response.status_code, response.text[:500])
        location = response.headers["Location"]
        assert location.startswith(REDIRECT_URI + "?"), location
        parsed = self.client.parse_response(AuthorizationResponse, info=location, sformat="urlencoded")
        assert parsed["state"] == flow.state
        return parsed

    def exchange(self, flow: Flow, code: str, verifier: str | None = None) -> Any:
        return self.client.do_access_token_request(
            state=flow.state,
            request_args={"code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier or flow.verifier},
            authn_method="client_secret_basic",
        )

    def log_in(self, pages: HostedPages, identifier: str = "alice", **extra: str) -> tuple[Flow, Any]:
        """The whole code flow: pyoidc's request, the hosted sign-in and consent, pyoidc's token request."""
        flow = self.authorization_url(**extra)
        pages.open(flow.url)
        if pages.page is not None and pages.page.status_code == 200 and "Sign in" in pages.html:
            pages.sign_in(identifier)
        if pages.page is not None and pages.page.status_code == 200 and "would like to" in pages.html:
            pages.consent()
        assert pages.page is not None
        authorization = self.callback(pages.page, flow)
        assert isinstance(authorization, AuthorizationResponse), authorization.to_dict()
        token = self.exchange(flow, authorization["code"])
        assert isinstance(token, AccessTokenResponse), token.to_dict()
        return flow, token


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def server(live_server: LiveServer) -> LiveServer:
    return live_server


@pytest.fixture
def alice(server: LiveServer) -> dict[str, Any]:
    response = requests.post(
        f"{server.url}/api/auth/register",
        json={"email": "alice@example.com", "username": "alice", "password": PASSWORD},
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def register(server: LiveServer, *options: str) -> dict[str, Any]:
    result = server.app.test_cli_runner().invoke(
        args=[
            "clients", "create", "--json", "--name", "PyOIDC",
            "--redirect-uri", REDIRECT_URI, "--post-logout-redirect-uri", POST_LOGOUT_URI,
            "--scope", "openid", "--scope", "profile", "--scope", "email", "--scope", "offline_access", *options,
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def registered(server: LiveServer) -> dict[str, Any]:
    return register(server)


@pytest.fixture
def rp(server: LiveServer, registered: dict[str, Any]) -> PyoidcRP:
    return PyoidcRP(server, registered)


@pytest.fixture
def pages(server: LiveServer) -> HostedPages:
    return HostedPages(server)


def _userinfo_status(server: LiveServer, access_token: str) -> int:
    response = requests.get(
        f"{server.url}/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=TIMEOUT
    )
    return response.status_code


# -- discovery ----------------------------------------------------------------------------------


def test_discovery_gives_pyoidc_the_issuer_endpoints_and_signing_keys(rp: PyoidcRP, server: LiveServer) -> None:
    config = rp.discovered
    assert config["issuer"] == server.url == rp.client.issuer
    assert rp.client.authorization_endpoint == f"{server.url}/oauth/authorize"
    assert rp.client.token_endpoint == f"{server.url}/oauth/token"
    assert rp.client.userinfo_endpoint == f"{server.url}/oauth/userinfo"
    assert rp.client.end_session_endpoint == f"{server.url}/oauth/logout"
    assert config["introspection_endpoint"] == f"{server.url}/oauth/introspect"
    assert config["revocation_endpoint"] == f"{server.url}/oauth/revoke"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in config["id_token_signing_alg_values_supported"]
    # pyoidc fetched the JWKS named by jwks_uri and filed its keys under the issuer
    rsa_keys = rp.client.keyjar.get_signing_key("RSA", owner=server.url)
    assert rsa_keys and all(key.kid for key in rsa_keys)
    jwks = requests.get(config["jwks_uri"], timeout=TIMEOUT).json()
    assert {key.kid for key in rsa_keys} <= {key["kid"] for key in jwks["keys"]}


def test_the_registered_client_is_the_one_pyoidc_uses(rp: PyoidcRP) -> None:
    assert rp.registered["tokenEndpointAuthMethod"] == "client_secret_basic"
    assert rp.registered["redirectUris"] == [REDIRECT_URI]
    assert set(rp.registered["scopes"]) == set(SCOPE.split())
    assert rp.client.client_id == rp.client_id and rp.client.client_secret == rp.registered["clientSecret"]


# -- the code flow with PKCE --------------------------------------------------------------------


def test_code_flow_with_pkce_and_an_id_token_validated_by_pyoidc(rp: PyoidcRP, pages: HostedPages, server: LiveServer, alice) -> None:
    flow = rp.authorization_url()
    assert flow.url.startswith(rp.client.authorization_endpoint + "?")
    query = parse_qs(urlsplit(flow.url).query)
    assert query["client_id"] == [rp.client_id] and query["redirect_uri"] == [REDIRECT_URI]
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["nonce"] == [flow.nonce] and query["state"] == [flow.state]

    pages.open(flow.url)
    assert pages.page is not None and pages.page.url.startswith(f"{server.url}/login")
    pages.sign_in()
    assert "PyOIDC" in pages.html  # the consent page names the relying party
    authorization = rp.callback(pages.consent(), flow)
    assert isinstance(authorization, AuthorizationResponse)
    assert authorization["code"] and authorization["state"] == flow.state

    token = rp.exchange(flow, authorization["code"])
    assert isinstance(token, AccessTokenResponse), token.to_dict()
    assert token["token_type"].lower() == "bearer" and token["access_token"] and token["refresh_token"]
    assert set(token["scope"]) == set(SCOPE.split())

    # pyoidc verified the ID token (signature with the JWKS key, iss, aud, exp, iat) and replaced the
    # JWT by the verified claims; the raw JWT stays available for logout
    id_token = token["id_token"]
    assert isinstance(id_token, IdToken)
    assert id_token.jws_header["alg"] == "RS256"
    assert id_token.jws_header["kid"] in {key.kid for key in rp.client.keyjar.get_signing_key("RSA", owner=server.url)}
    assert id_token["iss"] == server.url
    assert id_token["aud"] == [rp.client_id]
    assert id_token["nonce"] == flow.nonce
    assert id_token["sub"] == alice["user"]["id"]
    assert id_token["at_hash"] == left_hash(token["access_token"], "HS256")
    assert {"exp", "iat", "auth_time"} <= set(id_token.keys())
    assert token["id_token_jwt"].count(".") == 2


def test_pyoidc_refuses_an_id_token_whose_signature_was_tampered_with(rp: PyoidcRP, pages: HostedPages, server: LiveServer, alice) -> None:
    """The verification above is real: the same response with a flipped signature fails in pyoidc."""
    _, token = rp.log_in(pages)
    header, payload, signature = token["id_token_jwt"].split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    forged = json.dumps({
        "access_token": token["access_token"], "token_type": "Bearer", "id_token": f"{header}.{payload}.{flipped}",
    })
    with pytest.raises(BadSignature):
        rp.client.parse_response(AccessTokenResponse, info=forged, sformat="json")


def test_a_wrong_code_verifier_is_refused_and_the_code_cannot_be_reused(rp: PyoidcRP, pages: HostedPages, alice) -> None:
    flow = rp.authorization_url()
    pages.open(flow.url)
    pages.sign_in()
    code = rp.callback(pages.consent(), flow)["code"]
    wrong = rp.exchange(flow, code, verifier="x" * 64)
    assert isinstance(wrong, TokenErrorResponse) and wrong["error"] == "invalid_grant", wrong.to_dict()
    right = rp.exchange(flow, code)
    assert isinstance(right, AccessTokenResponse), right.to_dict()
    again = rp.exchange(flow, code)
    assert isinstance(again, TokenErrorResponse) and again["error"] == "invalid_grant", again.to_dict()


# -- userinfo -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, behavior",
    [("GET", "use_authorization_header"), ("POST", "use_authorization_header"), ("POST", "token_in_message_body")],
)
def test_userinfo_get_and_post_through_pyoidc(rp: PyoidcRP, pages: HostedPages, alice, method: str, behavior: str) -> None:
    flow, token = rp.log_in(pages)
    info = rp.client.do_user_info_request(method=method, state=flow.state, behavior=behavior, token_type="Bearer")
    assert isinstance(info, OpenIDSchema), info.to_dict()
    assert info["sub"] == token["id_token"]["sub"]
    assert info["email"] == "alice@example.com" and info["preferred_username"] == "alice"


# -- refresh ------------------------------------------------------------------------------------


def test_refresh_rotates_the_token_and_the_old_one_is_refused(rp: PyoidcRP, pages: HostedPages, server: LiveServer, alice) -> None:
    flow, first = rp.log_in(pages)
    old_refresh = first["refresh_token"]

    refreshed = rp.client.do_access_token_refresh(state=flow.state, authn_method="client_secret_basic")
    assert isinstance(refreshed, AccessTokenResponse), refreshed.to_dict()
    assert refreshed["refresh_token"] != old_refresh
    assert refreshed["access_token"] != first["access_token"]
    # the new ID token is verified by pyoidc too, for the same user and client
    assert isinstance(refreshed["id_token"], IdToken)
    assert refreshed["id_token"]["sub"] == first["id_token"]["sub"]
    assert refreshed["id_token"]["iss"] == server.url and refreshed["id_token"]["aud"] == [rp.client_id]
    assert refreshed["id_token"]["at_hash"] == left_hash(refreshed["access_token"], "HS256")
    assert _userinfo_status(server, refreshed["access_token"]) == 200

    # pyoidc sends the refresh token of the Token it is given (by default its newest one)
    reused = rp.client.do_access_token_refresh(state=flow.state, token=Token(first), authn_method="client_secret_basic")
    assert isinstance(reused, ErrorResponse) and reused["error"] == "invalid_grant", reused.to_dict()
    # a reuse revokes the whole family: the rotated-in token is refused as well
    after = rp.client.do_access_token_refresh(state=flow.state, token=Token(refreshed), authn_method="client_secret_basic")
    assert isinstance(after, ErrorResponse) and after["error"] == "invalid_grant", after.to_dict()


# -- introspection and revocation ---------------------------------------------------------------


def test_introspection_then_revocation(rp: PyoidcRP, pages: HostedPages, server: LiveServer, alice) -> None:
    flow, token = rp.log_in(pages)
    introspect, revoke = rp.discovered["introspection_endpoint"], rp.discovered["revocation_endpoint"]

    active = requests.post(introspect, data={"token": token["access_token"]}, auth=rp.basic_auth, timeout=TIMEOUT)
    assert active.status_code == 200, active.text
    body = active.json()
    assert body["active"] is True and body["client_id"] == rp.client_id
    assert body["sub"] == token["id_token"]["sub"] and body["iss"] == server.url
    assert set(body["scope"].split()) == set(SCOPE.split())

    refresh = requests.post(
        introspect, data={"token": token["refresh_token"], "token_type_hint": "refresh_token"}, auth=rp.basic_auth, timeout=TIMEOUT
    )
    assert refresh.status_code == 200 and refresh.json()["active"] is True, refresh.text

    # introspection needs the client's credentials
    anonymous = requests.post(introspect, data={"token": token["access_token"]}, timeout=TIMEOUT)
    assert anonymous.status_code == 401, anonymous.text

    revoked = requests.post(
        revoke, data={"token": token["refresh_token"], "token_type_hint": "refresh_token"}, auth=rp.basic_auth, timeout=TIMEOUT
    )
    assert revoked.status_code == 200, revoked.text

    for value in (token["access_token"], token["refresh_token"]):
        inactive = requests.post(introspect, data={"token": value}, auth=rp.basic_auth, timeout=TIMEOUT)
        assert inactive.status_code == 200 and inactive.json() == {"active": False}, inactive.text

    info = rp.client.do_user_info_request(method="GET", state=flow.state)
    assert isinstance(info, ErrorResponse) and info["error"] == "invalid_token", info.to_dict()
    refused = rp.client.do_access_token_refresh(state=flow.state, authn_method="client_secret_basic")
    assert isinstance(refused, ErrorResponse) and refused["error"] == "invalid_grant", refused.to_dict()


def test_revoking_the_access_token_ends_its_session(rp: PyoidcRP, pages: HostedPages, server: LiveServer, alice) -> None:
    _, token = rp.log_in(pages)
    revoked = requests.post(rp.discovered["revocation_endpoint"], data={"token": token["access_token"]}, auth=rp.basic_auth, timeout=TIMEOUT)
    assert revoked.status_code == 200, revoked.text
    assert _userinfo_status(server, token["access_token"]) == 401
    inactive = requests.post(rp.discovered["introspection_endpoint"], data={"token": token["refresh_token"]}, auth=rp.basic_auth, timeout=TIMEOUT)
    assert inactive.json() == {"active": False}


# -- RP-initiated logout ------------------------------------------------------------------------


def _end_session(rp: PyoidcRP, pages: HostedPages, token: Any, state: str) -> requests.Response:
    """pyoidc's end-session request, sent by the browser (its cookies are the provider session)."""
    url = EndSessionRequest(
        id_token_hint=token["id_token_jwt"], post_logout_redirect_uri=POST_LOGOUT_URI, state=state
    ).request(rp.client.end_session_endpoint)
    return pages.open(url)


def test_rp_initiated_logout_then_prompt_none_needs_a_login(rp: PyoidcRP, pages: HostedPages, server: LiveServer, alice) -> None:
    flow, token = rp.log_in(pages, scope="openid profile email")

    # still signed in at the provider: prompt=none gives a code at once
    silent = rp.authorization_url(prompt="none", scope="openid profile email")
    assert isinstance(rp.callback(pages.open(silent.url), silent), AuthorizationResponse)

    response = _end_session(rp, pages, token, "see-you")
    assert response.status_code == 302, (response.status_code, response.text[:500])
    assert response.headers["Location"] == f"{POST_LOGOUT_URI}?state=see-you"

    again = rp.authorization_url(prompt="none", scope="openid profile email")
    error = rp.callback(pages.open(again.url), again)
    assert isinstance(error, AuthorizationErrorResponse), error.to_dict()
    assert error["error"] == "login_required" and error["state"] == again.state
    # tokens bound to the ended browser session are revoked with it
    assert _userinfo_status(server, token["access_token"]) == 401
    refused = rp.client.do_access_token_refresh(state=flow.state, authn_method="client_secret_basic")
    assert isinstance(refused, ErrorResponse) and refused["error"] == "invalid_grant", refused.to_dict()


def test_offline_access_tokens_outlive_the_logout(rp: PyoidcRP, pages: HostedPages, server: LiveServer, alice) -> None:
    """With offline_access the tokens are not bound to the browser session (idp/oidc/grants.py):
    the logout ends the provider session, the relying party keeps its offline access."""
    flow, token = rp.log_in(pages)
    assert "offline_access" in token["scope"]
    assert _end_session(rp, pages, token, "bye").headers["Location"] == f"{POST_LOGOUT_URI}?state=bye"
    again = rp.authorization_url(prompt="none")
    assert rp.callback(pages.open(again.url), again)["error"] == "login_required"
    refreshed = rp.client.do_access_token_refresh(state=flow.state, authn_method="client_secret_basic")
    assert isinstance(refreshed, AccessTokenResponse), refreshed.to_dict()
    assert _userinfo_status(server, refreshed["access_token"]) == 200


# -- RFC 9207 -----------------------------------------------------------------------------------


def test_authorization_responses_carry_the_advertised_iss(rp: PyoidcRP, pages: HostedPages, server: LiveServer, alice) -> None:
    assert rp.discovered["authorization_response_iss_parameter_supported"] is True
    flow = rp.authorization_url()
    pages.open(flow.url)
    pages.sign_in()
    success = rp.callback(pages.consent(), flow)
    # the error redirect of another browser (no session), which must carry it as well
    anonymous = HostedPages(server)
    silent = rp.authorization_url(prompt="none")
    error = rp.callback(anonymous.open(silent.url), silent)
    assert error["error"] == "login_required"
    assert success.get("iss") == server.url and error.get("iss") == server.url


# -- ES256 ID tokens ----------------------------------------------------------------------------


def test_a_client_that_registered_es256_gets_es256_id_tokens_pyoidc_verifies(pages: HostedPages, server: LiveServer, alice) -> None:
    """`id_token_signed_response_alg=ES256`: the code exchange and every refresh answer with an ID
    token signed by the published P-256 key, which pyoidc checks against the registered algorithm."""
    registered = register(server, "--id-token-alg", "ES256")
    assert registered["idTokenSignedResponseAlg"] == "ES256"
    rp = PyoidcRP(server, registered, id_token_alg="ES256")
    assert rp.discovered["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    ec_kids = {key.kid for key in rp.client.keyjar.get_signing_key("EC", owner=server.url)}

    flow, token = rp.log_in(pages)
    id_token = token["id_token"]
    assert id_token.jws_header["alg"] == "ES256" and id_token.jws_header["kid"] in ec_kids
    assert id_token["nonce"] == flow.nonce and id_token["aud"] == [rp.client_id]
    assert id_token["at_hash"] == left_hash(token["access_token"], "HS256")  # SHA-256, as for RS256

    refreshed = rp.client.do_access_token_refresh(state=flow.state, authn_method="client_secret_basic")
    assert isinstance(refreshed, AccessTokenResponse), refreshed.to_dict()
    assert refreshed["id_token"].jws_header["alg"] == "ES256"
    assert refreshed["id_token"]["sub"] == alice["user"]["id"]
