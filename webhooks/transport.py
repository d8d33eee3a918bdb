"""One HTTP POST to a checked webhook target, connecting to the address that was checked.

Standard library ``http.client`` rather than ``requests`` (installed, as a
dependency of stripe) because the SSRF defence needs control of one step
that ``requests``/urllib3 hide: the TCP connection must go to the IP address
:mod:`webhooks.targets` resolved and checked, while the ``Host`` header, TLS
SNI and certificate check use the URL's host name. Here that is one
overridden ``connect``; with ``requests`` it means a custom transport
adapter over urllib3's pool internals. ``http.client`` also never follows a
redirect (a 3xx to ``http://169.254.169.254/`` would be an SSRF bypass; for
us any 3xx is simply a failed attempt), ignores the ``*_PROXY`` environment
variables, and adds no dependency.

The whole exchange (connect, send, read the status line and at most
:data:`MAX_RESPONSE_BYTES` of body, which is discarded) shares one deadline of
``WEBHOOK_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from webhooks.targets import Target

MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "Kobatela-Webhooks/1.0"


@dataclass(frozen=True)
class Response:
    status: int
    latency_ms: int


class TransportError(Exception):
    """The request did not get an HTTP answer; ``code`` is recorded on the delivery."""

    def __init__(self, code: str, message: str, latency_ms: int) -> None:
        self.code = code
        self.latency_ms = latency_ms
        super().__init__(f"{code}: {message}")


def ssl_context() -> ssl.SSLContext:
    """Certificates verified against the system's CAs, for the URL's host name."""
    return ssl.create_default_context()


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self.until - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline reached")
        return left


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Speaks to ``host`` (Host header) over a socket to the checked ``address``."""

    def __init__(self, host: str, port: int, *, address: str, deadline: _Deadline, **kwargs) -> None:
        super().__init__(host, port, timeout=deadline.remaining(), **kwargs)
        self._address = address
        self._deadline = deadline

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self._deadline.remaining())
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    default_port = http.client.HTTPS_PORT

    def __init__(self, host: str, port: int, *, address: str, deadline: _Deadline, context: ssl.SSLContext) -> None:
        super().__init__(host, port, address=address, deadline=deadline)
        self._context = context

    def connect(self) -> None:
        super().connect()
        # SNI and the certificate check name the URL's host, not the address.
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


def _connection(target: Target, address: str, deadline: _Deadline) -> _PinnedHTTPConnection:
    if target.scheme == "https":
        return _PinnedHTTPSConnection(target.host, target.port, address=address, deadline=deadline, context=ssl_context())
    return _PinnedHTTPConnection(target.host, target.port, address=address, deadline=deadline)


def _connect(target: Target, deadline: _Deadline) -> _PinnedHTTPConnection:
    """Connect to the first checked address that accepts (e.g. IPv6 then IPv4)."""
    last: OSError | None = None
    for address in target.addresses:
        conn = _connection(target, address, deadline)
        try:
            conn.connect()
            return conn
        except (ssl.SSLError, TimeoutError):
            conn.close()
            raise  # the host answered (TLS) or the time is up: another address will not help
        except OSError as exc:
            conn.close()
            last = exc
    raise last or OSError("no address to connect to")


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls_certificate_invalid"
    if isinstance(exc, ssl.SSLError):
        return "tls_error"
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        return "connection_reset"
    if isinstance(exc, http.client.HTTPException):
        return "invalid_response"
    return "connection_error"


def post(target: Target, *, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    """POST ``body`` and return the status; :class:`TransportError` when there is none."""
    deadline = _Deadline(timeout)
    started = time.perf_counter()

    def elapsed_ms() -> int:
        return int((time.perf_counter() - started) * 1000)

    conn: _PinnedHTTPConnection | None = None
    try:
        conn = _connect(target, deadline)
        sock = conn.sock  # kept: http.client drops conn.sock once the response owns the connection
        sock.settimeout(deadline.remaining())
        conn.request("POST", target.path, body=body, headers={
            "Content-Type": "application/json", "User-Agent": USER_AGENT, "Connection": "close", **headers,
        })
        sock.settimeout(deadline.remaining())
        response = conn.getresponse()
        answered = Response(status=response.status, latency_ms=elapsed_ms())
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # ValueError: http.client refusing a malformed status line or header.
        if conn is not None:
            conn.close()
        raise TransportError(_error_code(exc), str(exc)[:200], elapsed_ms()) from exc
    try:
        _drain(response, sock, deadline)
    except (OSError, http.client.HTTPException, ValueError):
        pass  # the status is the answer; what follows it does not change it
    finally:
        response.close()
        conn.close()
    return answered


def _drain(response: http.client.HTTPResponse, sock: socket.socket, deadline: _Deadline) -> None:
    """Read (and drop) at most MAX_RESPONSE_BYTES of body, within the deadline."""
    read = 0
    while read < MAX_RESPONSE_BYTES:
        sock.settimeout(deadline.remaining())
        chunk = response.read1(MAX_RESPONSE_BYTES - read)
        if not chunk:
            return
        read += len(chunk)
