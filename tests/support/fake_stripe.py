"""A local fake of the few Stripe endpoints Kobatela calls, for the real SDK to talk to.

Threaded ``http.server`` on 127.0.0.1 (random port)::

    with FakeStripe() as fake:
        provider = StripeProvider("sk_test_x", api_base=fake.base_url, retry_wait_seconds=0.01)
        fake.script("POST", "/v1/transfers", Reply(status=500), Reply())   # fail once, then normal
        provider.create_payout(...)
        fake.requests[-1].headers["Idempotency-Key"], fake.requests[-1].form["amount"]

Endpoints (form-encoded bodies, as the SDK sends them; nested keys stay flat,
e.g. ``form["metadata[payment_id]"]``):

* ``POST /v1/payment_intents`` → a PaymentIntent with ``client_secret``;
* ``POST /v1/transfers`` → a Transfer;
* ``POST /v1/refunds`` → a pending Refund of a PaymentIntent (``fake.update_refund`` moves it on);
* ``GET /v1/transfers/<id>`` → that Transfer, or a 404 ``resource_missing``.

Like Stripe, a POST repeated with the same ``Idempotency-Key`` replays the
first (successful) response instead of creating a second object:
``fake.transfers`` holds what was really created.

``fake.on_request`` (optional) is called with each request, in the server's
thread, while the client still waits for the answer.

Every request is recorded on arrival (``fake.requests``: method, path,
headers, form, raw body) — before any scripted delay, so a request the client
gave up on still counts as an attempt. ``script(method, path, *replies)``
queues the next answers for a route; a :class:`Reply` with ``status=None``
behaves normally — the object is created, then the answer waits ``delay``
seconds (a slow Stripe whose work did happen) — any other status answers a
Stripe-style error body after ``delay``. Closing the server wakes delayed
handlers.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["FakeStripe", "RecordedRequest", "Reply"]

_ERROR_TYPES = {
    400: ("invalid_request_error", "parameter_invalid"),
    401: ("invalid_request_error", None),
    402: ("card_error", "card_declined"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "resource_missing"),
    429: ("invalid_request_error", "rate_limit"),
}


@dataclass
class Reply:
    status: int | None = None  # None: the normal success behaviour
    delay: float = 0.0
    message: str = "Scripted error."
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        recorded = RecordedRequest(self.command, path, dict(self.headers.items()), form, body)
        if fake.on_request is not None:
            fake.on_request(recorded)  # the test looks at the world while the client waits
        reply = fake._record_and_next_reply(recorded)
        if reply.status is None:
            # Process first, then stall: models "Stripe did it, the answer was late".
            status, payload = fake._respond(recorded)
            if reply.delay and fake._closing.wait(reply.delay):
                return  # server closing: drop the answer
            self._send_json(status, payload, reply.headers)
            return
        if reply.delay and fake._closing.wait(reply.delay):
            return
        self._send_error(reply)

    def _send_error(self, reply: Reply) -> None:
        err_type, default_code = _ERROR_TYPES.get(reply.status, ("api_error", None))
        error = {"type": err_type, "message": reply.message}
        if reply.code or default_code:
            error["code"] = reply.code or default_code
        self._send_json(reply.status, {"error": error}, reply.headers)

    def _send_json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_fake_{time.monotonic_ns()}")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: "FakeStripe"


class FakeStripe:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._scripts: dict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self._idempotent: dict[tuple[str, str], tuple[int, dict]] = {}  # (path, key) → response
        self._counter = 0
        self.requests: list[RecordedRequest] = []
        self.payment_intents: dict[str, dict] = {}
        self.transfers: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        # Called in the server's thread with each request, before it is answered.
        self.on_request: Callable[[RecordedRequest], None] | None = None
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- lifecycle --------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeStripe":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- test controls ------------------------------------------------------------

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Queue the next replies for ``method path`` (a ``/v1/transfers/<id>`` path matches exactly)."""
        with self._lock:
            self._scripts[(method.upper(), path)].extend(replies)

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method.upper() and r.path == path]

    def reverse_transfer(self, transfer_id: str, amount: int | None = None) -> None:
        """Reverse a transfer fully (default) or by ``amount`` minor units."""
        with self._lock:
            transfer = self.transfers[transfer_id]
            reversed_amount = transfer["amount"] if amount is None else amount
            transfer["amount_reversed"] = reversed_amount
            transfer["reversed"] = reversed_amount >= transfer["amount"]

    def update_refund(self, refund_id: str, status: str, failure_reason: str | None = None) -> dict:
        """Stripe moves a refund on (succeeded, failed, canceled…): the Refund as its
        ``refund.updated`` event carries it."""
        with self._lock:
            refund = self.refunds[refund_id]
            refund["status"] = status
            if failure_reason is not None:
                refund["failure_reason"] = failure_reason
            return dict(refund, metadata=dict(refund["metadata"]))

    # -- server side ------------------------------------------------------------

    def _record_and_next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            queue = self._scripts.get((request.method, request.path))
            return queue.popleft() if queue else Reply()

    def _respond(self, request: RecordedRequest) -> tuple[int, dict]:
        key = request.headers.get("Idempotency-Key")
        with self._lock:
            if request.method == "POST" and key and (request.path, key) in self._idempotent:
                return self._idempotent[(request.path, key)]
            status, payload = self._route(request)
            if request.method == "POST" and key and status == 200:
                self._idempotent[(request.path, key)] = (status, payload)
            return status, payload

    def _next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_fake{self._counter:06d}"

    @staticmethod
    def _metadata(form: dict[str, str]) -> dict[str, str]:
        return {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[") and k.endswith("]")}

    def _route(self, request: RecordedRequest) -> tuple[int, dict]:
        form, path, now = request.form, request.path, int(time.time())
        if request.method == "POST" and path == "/v1/payment_intents":
            pi_id = self._next_id("pi")
            intent = {
                "id": pi_id,
                "object": "payment_intent",
                "amount": int(form["amount"]),
                "currency": form["currency"],
                "client_secret": f"{pi_id}_secret_fake",
                "status": "requires_payment_method",
                "metadata": self._metadata(form),
                "created": now,
            }
            self.payment_intents[pi_id] = intent
            return 200, intent
        if request.method == "POST" and path == "/v1/transfers":
            tr_id = self._next_id("tr")
            transfer = {
                "id": tr_id,
                "object": "transfer",
                "amount": int(form["amount"]),
                "amount_reversed": 0,
                "currency": form["currency"],
                "destination": form["destination"],
                "transfer_group": form.get("transfer_group"),
                "metadata": self._metadata(form),
                "reversed": False,
                "created": now,
            }
            self.transfers[tr_id] = transfer
            return 200, dict(transfer)
        if request.method == "POST" and path == "/v1/refunds":
            re_id = self._next_id("re")
            intent = self.payment_intents.get(form["payment_intent"], {})
            refund = {
                "id": re_id,
                "object": "refund",
                "amount": int(form["amount"]),
                "currency": intent.get("currency", "usd"),
                "payment_intent": form["payment_intent"],
                "metadata": self._metadata(form),
                "status": "pending",
                "created": now,
            }
            self.refunds[re_id] = refund
            return 200, dict(refund)
        if request.method == "GET" and path.startswith("/v1/transfers/"):
            transfer = self.transfers.get(path.rsplit("/", 1)[1])
            if transfer is None:
                return 404, {
                    "error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such transfer."}
                }
            return 200, dict(transfer)
        return 404, {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL ({path})."}}
