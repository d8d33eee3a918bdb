"""Requests through Django's WSGI handler in this process, as gunicorn's worker
calls it: every middleware, DRF, the idempotency claim and answer, the service,
the response. The HTTP server and the network are left out. Used by
``bench/instructions.py`` and ``bench/shares.py``; the database and Redis are
the environment's (``bench/run.sh`` starts them and seeds the key and escrows).
"""

from __future__ import annotations

import io
import os
import sys
import uuid
from pathlib import Path
from typing import Callable

DEPOSIT_BODY = b'{"amount": "1.00"}'

WsgiApp = Callable[[dict, Callable], object]


def application() -> WsgiApp:
    """Django's WSGI handler for the project, set up as gunicorn's worker sets it up."""
    root = str(Path(__file__).resolve().parents[1])  # the project, importable from bench/
    if root not in sys.path:
        sys.path.insert(0, root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kobatela.settings")
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()  # runs django.setup()


def environ(mode: str, api_key: str, escrow_id: str) -> dict:
    """A deposit of 1.00 with a fresh ``Idempotency-Key`` (``mode="deposit"``),
    or the audited read of the escrow (``mode="get"``)."""
    body = DEPOSIT_BODY if mode == "deposit" else b""
    return {
        "REQUEST_METHOD": "POST" if mode == "deposit" else "GET",
        "PATH_INFO": f"/api/v1/escrows/{escrow_id}" + ("/deposit" if mode == "deposit" else ""),
        "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json",
        "HTTP_AUTHORIZATION": f"Bearer {api_key}", "HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex,
        "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.multithread": False,
        "wsgi.multiprocess": True, "wsgi.run_once": False,
    }


def send(app: WsgiApp, mode: str, api_key: str, escrow_id: str, *, tool: str) -> tuple[dict[str, str], bytes]:
    """One request, its body read to the end: the answer's headers and body. A
    non-2xx answer ends the program (``tool`` names who stopped)."""
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer.update(status=status, headers=dict(headers))

    body = b"".join(app(environ(mode, api_key, escrow_id), start_response))
    if not answer["status"].startswith("2"):
        sys.exit(f"{tool}: {mode} answered {answer['status']}")
    return answer["headers"], body
