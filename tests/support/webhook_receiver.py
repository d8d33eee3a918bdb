"""An integrator's webhook receiver for tests: a threaded ``http.server`` on 127.0.0.1.

Records every request (path, headers, raw body) and answers with the status
set for the test (default 200)::

    with WebhookReceiver() as receiver:
        receiver.url                    # http://127.0.0.1:<port>/hooks
        receiver.respond(500)           # every next request answers 500
        receiver.respond(500, 500, 200) # the next three answers, then the default again
        receiver.requests[0].headers["webhook-id"], receiver.requests[0].body
        receiver.verify(secret)         # every request, verified by the standardwebhooks library

``tls=(certfile, keyfile)`` serves HTTPS instead and records the SNI name
each client asked for (``receiver.sni_names``).
"""

from __future__ import annotations

import json
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

__all__ = ["Received", "WebhookReceiver"]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    answered: int
    extra: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)

    def verify(self, secret: str) -> Any:
        """Standard Webhooks verification with the reference library (raises when it fails)."""
        return Webhook(secret).verify(self.body, self.headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        receiver = self.server.receiver
        status = receiver._next_status()
        receiver._record(Received(method="POST", path=self.path,
                                  headers={k.lower(): v for k, v in self.headers.items()},
                                  body=body, answered=status))
        reply = b'{"ok": true}' if 200 <= status < 300 else b'{"error": "test"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        try:
            self.wfile.write(reply)
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: "WebhookReceiver"


class WebhookReceiver:
    def __init__(self, *, path: str = "/hooks", tls: tuple[str, str] | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._statuses: deque[int] = deque()
        self._default_status = 200
        self.requests: list[Received] = []
        self.sni_names: list[str | None] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            context.sni_callback = self._on_sni
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="webhook-receiver", daemon=True)

    # --- lifecycle ---

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{self.path}"

    def url_for(self, host: str) -> str:
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    # --- behaviour ---

    def respond(self, *statuses: int, default: int | None = None) -> None:
        """Answer the next requests with ``statuses`` in turn; with one status
        and no ``default``, every request from now on."""
        with self._lock:
            self._statuses.clear()
            if len(statuses) == 1 and default is None:
                self._default_status = statuses[0]
            else:
                self._statuses.extend(statuses)
                if default is not None:
                    self._default_status = default

    def _next_status(self) -> int:
        with self._lock:
            return self._statuses.popleft() if self._statuses else self._default_status

    def _record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    def _on_sni(self, ssl_socket, server_name, context) -> None:
        with self._lock:
            self.sni_names.append(server_name)

    # --- reading ---

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def ids(self) -> list[str]:
        with self._lock:
            return [r.headers.get("webhook-id") for r in self.requests]

    def types(self) -> list[str]:
        with self._lock:
            return [r.json()["type"] for r in self.requests]

    def verify(self, secret: str) -> list[Any]:
        with self._lock:
            requests = list(self.requests)
        return [r.verify(secret) for r in requests]
