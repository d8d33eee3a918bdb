"""A local OpenAI-compatible server for tests: ``POST /v1/chat/completions``.

Threaded ``http.server`` on 127.0.0.1 (random port). Every request body is
recorded; the reply is set per test::

    with OpenAIStubServer() as server:
        server.set_reply({"risk_level": "low", "score": 0.1, "flags": [], "explanation": "ok"})
        client = openai.OpenAI(api_key="test", base_url=server.base_url, max_retries=0)
        ...
        server.requests[0]["messages"]        # what the SDK sent (parsed JSON)

Behaviours (``set_reply``):

* ``set_reply(obj)`` – a dict / list is sent as the message content, JSON-encoded;
* ``set_reply("not json {")`` – a string is sent verbatim as the content;
* ``set_reply(status=500)`` / ``set_reply(status=429)`` – an OpenAI-style error body;
* ``set_reply(obj, delay=2.0)`` – sleep first (timeout tests; closing the server
  wakes sleepers, whose requests are then dropped unanswered);

``request_count`` counts requests that arrived, ``answered`` the completions
written back to a client.
* ``finish_reason=`` / ``refusal=`` – to exercise the client's checks.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["OpenAIStubServer", "Reply"]


@dataclass
class Reply:
    content: Any = None
    status: int = 200
    delay: float = 0.0
    finish_reason: str = "stop"
    refusal: str | None = None
    model: str | None = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send_json(self, status: int, body: dict, headers: dict[str, str] | None = None) -> bool:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        stub = self.server.stub
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        stub._record(self.path, dict(self.headers), raw, body)

        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error", "code": None}})
            return

        reply = stub._reply
        if reply.delay:
            if stub._closing.wait(reply.delay):
                return  # server closing: drop the connection unanswered
        if reply.status != 200:
            kind = "rate_limit_exceeded" if reply.status == 429 else "server_error"
            self._send_json(
                reply.status,
                {"error": {"message": f"stub error {reply.status}", "type": kind, "param": None, "code": kind}},
                headers={"x-should-retry": "false"} if reply.status == 429 else None,
            )
            return

        content = reply.content
        if content is not None and not isinstance(content, str):
            content = json.dumps(content)
        model = reply.model or (body or {}).get("model") or "stub-model"
        sent = self._send_json(
            200,
            {
                "id": f"chatcmpl-stub-{stub.request_count}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": reply.refusal},
                        "finish_reason": reply.finish_reason,
                        "logprobs": None,
                    }
                ],
                "usage": {"prompt_tokens": len(raw) // 4, "completion_tokens": len(content or "") // 4,
                          "total_tokens": (len(raw) + len(content or "")) // 4},
            },
        )
        if sent:
            with stub._lock:
                stub.answered += 1

    def do_GET(self) -> None:
        self.server.stub._record(self.path, dict(self.headers), b"", None)
        self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error", "code": None}})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    stub: "OpenAIStubServer"


class OpenAIStubServer:
    """Context manager: ``with OpenAIStubServer() as server: server.base_url``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._reply = Reply(content={"risk_level": "low", "score": 0.0, "flags": [], "explanation": ""})
        self.requests: list[Any] = []  # parsed JSON bodies, in arrival order
        self.answered = 0  # completions actually written back (a dropped or cut-off request is not one)
        self.raw_requests: list[bytes] = []
        self.request_headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> "OpenAIStubServer":
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.stub = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "OpenAIStubServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- behaviour ----------------------------------------------------------

    def set_reply(
        self,
        content: Any = None,
        *,
        status: int = 200,
        delay: float = 0.0,
        finish_reason: str = "stop",
        refusal: str | None = None,
        model: str | None = None,
    ) -> None:
        self._reply = Reply(content=content, status=status, delay=delay, finish_reason=finish_reason,
                            refusal=refusal, model=model)

    # -- recording ----------------------------------------------------------

    def _record(self, path: str, headers: dict[str, str], raw: bytes, body: Any) -> None:
        with self._lock:
            self.paths.append(path)
            self.request_headers.append(headers)
            self.raw_requests.append(raw)
            self.requests.append(body)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.raw_requests.clear()
            self.request_headers.clear()
            self.paths.clear()


# A well-formed low-risk verdict, the stub's default reply in the tests.
LOW_RISK = {"risk_level": "low", "score": 0.08, "flags": [], "explanation": "Consistent with the milestone."}
