"""Where a webhook may point: http(s) URLs whose every address is public, unless configured otherwise.

The check runs when a webhook is saved and again before each attempt, and the attempt connects to
the very address that was checked, so a name that later resolves elsewhere (DNS rebinding) cannot
reach a private service.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

from idp.config import WebhookSettings

MAX_URL_LENGTH = 2048

Resolver = Callable[[str, int], list[str]]


class TargetRefused(ValueError):
    """The URL may not be used as a webhook target; the message says why, for the user."""


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line
    address: str  # the checked address to connect to

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def check_target(url: str, *, allow_private: bool, require_https: bool, resolver: Resolver = resolve) -> Target:
    """The target of `url`, or TargetRefused."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("is not a valid URL") from None
    allowed_schemes = ("https",) if require_https else ("http", "https")
    if parts.scheme not in allowed_schemes:
        raise TargetRefused("must be an https URL" if require_https else "must be an http or https URL")
    if not parts.hostname:
        raise TargetRefused("needs a host name")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("must not contain credentials")
    if parts.fragment:
        raise TargetRefused("must not contain a fragment")
    host = ascii_host(parts.hostname)
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError):
        raise TargetRefused(f"host {host} cannot be resolved") from None
    if not addresses:
        raise TargetRefused(f"host {host} cannot be resolved")
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise TargetRefused("points to a private, loopback or reserved address")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, addresses[0])


def ascii_host(host: str) -> str:
    """The host name as it goes to DNS, into the Host header and the TLS server name: an
    internationalised name in its A-label form (IDNA 2008 with UTS 46 mapping, `xn--…`)."""
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise TargetRefused(f"host {host} is not a valid host name") from None


def check_webhook_target(url: str, settings: WebhookSettings, resolver: Resolver = resolve) -> Target:
    """`check_target` with the configured policy (WEBHOOK_ALLOW_PRIVATE_TARGETS, WEBHOOK_REQUIRE_HTTPS)."""
    return check_target(url, allow_private=settings.allow_private_targets, require_https=settings.require_https, resolver=resolver)


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # an IPv4 address inside an IPv6 one (::ffff:a.b.c.d, 6to4's 2002:AABB:CCDD::) is judged as
        # itself: a 6to4 relay would deliver 2002:7f00:1:: to 127.0.0.1 (Teredo and NAT64 prefixes
        # are not global to begin with)
        ip = ip.ipv4_mapped or ip.sixtofour or ip
        if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
            return False  # fec0::/10, the private addresses before fc00::/7: is_global does not exclude them
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback or ip.is_link_local)
