"""Where outbound webhooks may go: the URL and address policy (SSRF).

A webhook URL is chosen by an integrator and fetched by our workers, which sit
next to the database, the cache and the cloud's metadata service. So:

* the scheme is ``https`` (``http`` only when ``DEBUG`` or
  ``WEBHOOK_ALLOW_PRIVATE_TARGETS`` is on); no credentials in the URL;
* every address the host resolves to must be public. Refused always: link-local
  (``169.254.0.0/16`` holds the metadata services), cloud metadata addresses,
  multicast, reserved, unspecified, broadcast; refused unless
  ``WEBHOOK_ALLOW_PRIVATE_TARGETS``: loopback, private and shared ranges, and
  anything else that is not globally routable. IPv4 embedded in IPv6 (mapped,
  NAT64, 6to4, Teredo) is checked as the IPv4 it carries.

The check runs at registration (400 ``webhook_url_forbidden``) and again at
every delivery, *after* resolving the name: a name that resolved to a public
address yesterday may resolve to 127.0.0.1 today (DNS rebinding). The delivery
then connects to the very address it checked (:class:`Target`), never
resolving the name a second time.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from kobatela.core.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services outside the link-local range (which is refused anyway).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack… (IPv4)
        "fd00:ec2::254",  # AWS (IPv6)
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server (a public address)
        "169.254.170.2",  # AWS ECS task metadata
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: neither private nor global
MAX_URL_LENGTH = 2048


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to ``addresses`` (in order), speak to ``host``."""

    scheme: str
    host: str  # for the Host header and TLS (SNI and certificate check)
    port: int
    path: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]


class TargetError(Exception):
    """A URL or address the policy refuses; ``code`` is stable and recorded on the delivery."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")

    def as_validation_error(self) -> ValidationFailed:
        return ValidationFailed(self.code, self.message, details={"url": [self.message]})


def allow_private() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_TARGETS", False))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress, *, private_allowed: bool) -> str | None:
    """Why ``address`` may not receive a webhook, or ``None`` when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "a scoped IPv6 address"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_refusal(embedded, private_allowed=private_allowed)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:  # before "reserved": ::1 lies in IPv6's reserved ::/8
        return None if private_allowed else "a loopback address"
    if address.is_reserved:  # 240.0.0.0/4 with 255.255.255.255, IPv6's unassigned ranges
        return "a reserved address"
    if address.is_global:
        return None
    if private_allowed and (address.is_private or address in _SHARED):
        return None
    return "a private or non-routable address"


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order (IP literals as they are).

    Module-level so tests can stand in for DNS. Raises :class:`socket.gaierror`.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        if sockaddr[0] not in seen:
            seen.append(sockaddr[0])
    return seen


def parse_url(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of an acceptable URL, or :class:`TargetError`."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH or any(c.isspace() for c in url):
        raise TargetError("webhook_url_invalid", f"The URL must be an absolute http(s) URL of at most {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetError("webhook_url_invalid", "The URL could not be parsed.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise TargetError("webhook_url_invalid", "The URL must be an absolute http(s) URL with a host.")
    if scheme == "http" and not (settings.DEBUG or allow_private()):
        raise TargetError("webhook_url_insecure", "Webhook URLs must use https.")
    if parts.username is not None or parts.password is not None:
        raise TargetError("webhook_url_invalid", "The URL must not carry credentials; authenticate with the signature.")
    if parts.fragment:
        raise TargetError("webhook_url_invalid", "The URL must not have a fragment.")
    host = parts.hostname.rstrip(".")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise TargetError("webhook_url_invalid", "The URL's host name is not valid.") from None
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port or (443 if scheme == "https" else 80), path


def _check_addresses(addresses: list[str]) -> None:
    private_allowed = allow_private()
    for raw in addresses:
        try:
            address = ipaddress.ip_address(raw)
        except ValueError:
            raise TargetError("webhook_url_forbidden", "The URL's host resolves to an unusable address.") from None
        refusal = address_refusal(address, private_allowed=private_allowed)
        if refusal is not None:
            # The message names the kind of address, never the address itself.
            raise TargetError("webhook_url_forbidden", f"The URL's host resolves to {refusal}.")


def check_for_registration(url: str) -> str:
    """Validate a URL being registered; returns it unchanged.

    A host that does not resolve now is accepted (its DNS may not be live
    yet): every delivery resolves and checks it again.
    """
    _scheme, host, port, _path = parse_url(url)
    try:
        addresses = resolve(host, port)
    except (socket.gaierror, UnicodeError, OSError):
        return url
    _check_addresses(addresses)
    return url


def target_for_delivery(url: str) -> Target:
    """Resolve and check a URL right before sending: the addresses returned are
    the ones to connect to. :class:`TargetError` ``webhook_url_forbidden`` for a
    refused address, ``webhook_dns_error`` when the name does not resolve."""
    scheme, host, port, path = parse_url(url)
    try:
        addresses = resolve(host, port)
    except (socket.gaierror, UnicodeError, OSError):
        raise TargetError("webhook_dns_error", "The URL's host name does not resolve.") from None
    if not addresses:
        raise TargetError("webhook_dns_error", "The URL's host name does not resolve.")
    _check_addresses(addresses)
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=tuple(addresses))
