"""The sandbox PSP as the tests drive it: its webhook secrets, its signed
deliveries to ``POST /api/v1/psp/webhook`` (signed with the reference
``standardwebhooks`` library), and the fixtures that give each test a clean
sandbox (``clean_sandbox``) and the app the PSP's secret (``psp_sandbox``),
declared once in ``tests/conftest.py``."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import datetime, timezone

from django.test import Client
from standardwebhooks import Webhook

URL = "/api/v1/psp/webhook"
SECRET = "whsec_" + base64.b64encode(b"psp-current-secret-32-bytes-long").decode()
NEXT_SECRET = "whsec_" + base64.b64encode(b"psp-next-secret-also-32-bytes-ok").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"someone-else-secret-32-bytes-xx!").decode()


def sign_headers(body: bytes, *, secret: str = SECRET, msg_id: str | None = None, timestamp: int | None = None) -> dict:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, tz=timezone.utc), body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def encode(event) -> bytes:
    return json.dumps(event).encode()


def deliver(body: bytes, headers: dict | None = None, **sign_kwargs):
    """POST a body, signed unless ``headers`` are given. Never a 5xx."""
    headers = sign_headers(body, **sign_kwargs) if headers is None else headers
    response = Client().post(URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code < 500, (response.status_code, response.content[:500])
    return response


def payout_event(kind: str, payment, **data) -> dict:
    """What the PSP says of ``payment``'s payout (``payout.settled``, ``payout.failed``…), with ``data`` over the defaults."""
    base = {"payment_id": payment.pk, "psp_ref": payment.psp_ref or "psp_po_x",
            "amount": str(payment.amount), "currency": payment.currency}
    return {"type": kind, "data": {**base, **data}}
