"""A stand-in for a relying party's pages on loopback, for browser journeys that end there.

Why a real server and not `page.route("https://rp.example/**")`: Playwright never routes the hops
of a redirect (microsoft/playwright#2617), and the provider reaches the relying party by redirect,
so Chromium would try to resolve rp.example. The stand-in listens on 127.0.0.1 and is addressed as
http://localhost:PORT (loopback http is a registrable redirect URI, RFC 8252), which to the browser
is another site than the provider's http://127.0.0.1:PORT, as a real relying party would be.

Every GET is answered with a small HTML page ("Back at <name>") and its URL recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.loopback import serving


@dataclass
class RelyingPartyPages:
    name: str = "Notes"
    origin: str = ""  # http://localhost:PORT
    urls: list[str] = field(default_factory=list)  # every URL the browser asked for, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def callback(self) -> str:
        return f"{self.origin}/callback"

    @property
    def signed_out(self) -> str:
        return f"{self.origin}/signed-out"

    def arrivals(self, url: str) -> list[dict[str, str]]:
        """The queries the browser arrived at `url` (no query string) with, oldest first."""
        with self.lock:
            urls = list(self.urls)
        return [{k: v[0] for k, v in parse_qs(urlsplit(u).query).items()} for u in urls if u.split("?")[0] == url]


def _handler(pages: RelyingPartyPages) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            with pages.lock:
                pages.urls.append(pages.origin + self.path)
            title = escape(pages.name)
            body = (
                f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title></head>"
                f"<body><main><h1>Back at {title}</h1><p>{escape(urlsplit(self.path).path)}</p></main></body></html>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def rp_pages() -> Iterator[RelyingPartyPages]:
    """The relying party's pages at http://localhost:PORT (`.callback`, `.signed_out`, `.urls`)."""
    pages = RelyingPartyPages()
    with serving(_handler(pages)) as port:
        pages.origin = f"http://localhost:{port}"
        yield pages
