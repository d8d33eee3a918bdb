"""Signing and verification of webhooks, inbound (PSPs) and outbound (integrators).

Pure Python: no Django import, usable without settings. Every refusal is a
domain error from :mod:`kobatela.core.errors`:

============================  ====  ==============================================
code                          HTTP  when
============================  ====  ==============================================
``webhook_secret_missing``    503   no usable secret is configured
``webhook_headers_missing``   400   a required header is absent or blank
``webhook_timestamp_invalid`` 400   timestamp not an integer, or outside tolerance
``webhook_signature_invalid`` 401   no signature matches any accepted secret
============================  ====  ==============================================

The checks run in that order, so a misconfigured deployment answers 503 (PSPs
retry on 5xx, so no event is lost) whatever the request looks like. Messages
and details never contain a secret, a signature we computed, or the body.

Two schemes are supported:

* `Standard Webhooks <https://www.standardwebhooks.com/>`_ (:func:`verify`,
  :func:`sign`, :func:`signature_headers`): headers ``webhook-id``,
  ``webhook-timestamp`` and ``webhook-signature``; the signature is
  ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, several
  space-separated entries allowed. Used for the generic PSP and for our
  outbound webhooks.
* Stripe (:func:`verify_stripe`): header ``Stripe-Signature:
  t=<ts>,v1=<hex HMAC-SHA256 of "{t}.{body}">[,v1=...][,v0=...]``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Mapping, Sequence

from kobatela.core.errors import BadRequest, ServiceUnavailable, Unauthenticated

__all__ = [
    "HEADER_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "fingerprint",
    "secret_bytes",
    "sign",
    "signature_headers",
    "verify",
    "verify_stripe",
]

logger = logging.getLogger(__name__)

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"

SIGNATURE_VERSION = "v1"
SECRET_PREFIX = "whsec_"

# ASCII digits only: int() would also accept "+1", " 1", "1_0" and non-ASCII digits.
_INTEGER = re.compile(r"-?[0-9]{1,20}")


# --------------------------------------------------------------------------- #
# Secrets
# --------------------------------------------------------------------------- #


def secret_bytes(secret: str) -> bytes:
    """Return the HMAC key for a Standard Webhooks secret.

    ``whsec_<base64>`` is decoded (padding optional, as the reference library
    accepts); any other value is used as its UTF-8 bytes. Raises
    :class:`ValueError` (without the secret in the message) for an empty
    secret or a ``whsec_`` secret that is not valid base64.

    Stripe secrets also start with ``whsec_`` but are used verbatim;
    :func:`verify_stripe` does not call this function.
    """
    if not isinstance(secret, str):
        raise TypeError("webhook secret must be a str")
    if secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX) :]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("webhook secret has the whsec_ prefix but is not valid base64") from None
    else:
        key = secret.encode("utf-8")
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def fingerprint(secret: str | None) -> str | None:
    """Short, non-reversible identifier of a secret for health/admin pages.

    First 8 hex characters of SHA-256 of the key bytes (see :func:`secret_bytes`),
    or ``None`` when no secret is set. A malformed ``whsec_`` secret is
    fingerprinted on its UTF-8 bytes so it still shows up as *configured*.
    Only as hard to guess as the secret itself: fine for random secrets.
    """
    if secret is None or not secret.strip():
        return None
    try:
        key = secret_bytes(secret)
    except ValueError:
        key = secret.encode("utf-8")
    return hashlib.sha256(key).hexdigest()[:8]


def _usable_keys(secrets: Sequence[str | None]) -> list[bytes]:
    """Keys for the configured secrets; blank ones skipped, malformed ones logged and skipped."""
    if isinstance(secrets, str):  # a bare str is a Sequence[str] of characters
        secrets = [secrets]
    keys: list[bytes] = []
    for position, secret in enumerate(secrets):
        if secret is None or not secret.strip():
            continue
        try:
            keys.append(secret_bytes(secret))
        except ValueError as exc:
            logger.warning("Webhook secret #%d ignored: %s.", position, exc)
    if not keys:
        raise ServiceUnavailable("webhook_secret_missing", "No webhook secret is configured.")
    return keys


def _raw_body(body: bytes) -> bytes:
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    # A str (or parsed JSON) is not what was signed: verify on the raw request body.
    raise TypeError("webhook body must be the raw request bytes")


# --------------------------------------------------------------------------- #
# Standard Webhooks
# --------------------------------------------------------------------------- #


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return ``"v1,<base64 signature>"`` for one secret."""
    digest = _digest(secret_bytes(secret), msg_id, int(timestamp), _raw_body(body))
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_headers(
    *, secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers for an outbound webhook.

    One signature per secret, space separated and in the given order, so a
    receiver holding either the current or the next secret accepts the message
    during a rotation. Blank secrets are skipped; 503 ``webhook_secret_missing``
    if none is left. A malformed ``whsec_`` secret raises :class:`ValueError`.
    """
    if isinstance(secrets, str):
        secrets = [secrets]
    usable = [s for s in secrets if s is not None and s.strip()]
    if not usable:
        raise ServiceUnavailable("webhook_secret_missing", "No webhook secret is configured.")
    if not msg_id:
        raise ValueError("msg_id must not be empty")
    timestamp = int(timestamp)
    body = _raw_body(body)
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: " ".join(
            sign(secret=s, msg_id=msg_id, timestamp=timestamp, body=body) for s in usable
        ),
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup working on plain dicts and on Django's ``request.headers``."""
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if isinstance(key, str) and key.lower() == name:
                value = candidate
                break
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    value = str(value).strip()
    return value or None


def _check_timestamp(raw: str, tolerance_seconds: int, now: int | None) -> int:
    if not _INTEGER.fullmatch(raw):
        raise BadRequest("webhook_timestamp_invalid", "The webhook timestamp is not an integer.")
    timestamp = int(raw)
    current = int(time.time()) if now is None else int(now)
    if abs(current - timestamp) > tolerance_seconds:
        raise BadRequest(
            "webhook_timestamp_invalid",
            "The webhook timestamp is outside the accepted tolerance.",
            details={"tolerance_seconds": tolerance_seconds},
        )
    return timestamp


def _v1_signatures(header: str) -> list[bytes]:
    """Decoded ``v1`` signatures; other versions and malformed entries are ignored."""
    signatures: list[bytes] = []
    for entry in header.split():
        version, sep, encoded = entry.partition(",")
        if not sep or version != SIGNATURE_VERSION:
            continue
        try:
            signatures.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return signatures


def verify(
    *,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str | None],
    tolerance_seconds: int,
    now: int | None = None,
) -> str:
    """Verify a Standard Webhooks request and return its ``webhook-id``.

    ``headers`` may be a dict in any case or Django's ``request.headers``;
    ``body`` must be the raw request bytes. ``secrets`` are the accepted
    secrets (current and next during a rotation); ``None``/blank entries are
    skipped. The timestamp must be within ``tolerance_seconds`` of ``now``
    (default: the current time) in either direction; the bound is inclusive.
    Replay protection beyond the tolerance (remembering seen ids) is the
    caller's job.
    """
    keys = _usable_keys(secrets)
    body = _raw_body(body)

    msg_id = _header(headers, HEADER_ID)
    raw_timestamp = _header(headers, HEADER_TIMESTAMP)
    raw_signature = _header(headers, HEADER_SIGNATURE)
    if msg_id is None or raw_timestamp is None or raw_signature is None:
        found = {HEADER_ID: msg_id, HEADER_TIMESTAMP: raw_timestamp, HEADER_SIGNATURE: raw_signature}
        missing = [name for name, value in found.items() if value is None]
        raise BadRequest(
            "webhook_headers_missing",
            "Required webhook headers are missing.",
            details={"missing": missing},
        )

    timestamp = _check_timestamp(raw_timestamp, tolerance_seconds, now)

    received = _v1_signatures(raw_signature)
    matched = False
    for key in keys:
        expected = _digest(key, msg_id, timestamp, body)
        for candidate in received:
            # No early exit: the time taken does not depend on which entry matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise Unauthenticated("webhook_signature_invalid", "The webhook signature does not match.")
    return msg_id


# --------------------------------------------------------------------------- #
# Stripe
# --------------------------------------------------------------------------- #


def verify_stripe(
    *,
    header: str | None,
    body: bytes,
    secret: str | None,
    tolerance_seconds: int = 300,
    now: int | None = None,
) -> int:
    """Verify a ``Stripe-Signature`` header and return its timestamp.

    The secret (``whsec_...``) is used verbatim as UTF-8, as Stripe does (not
    base64-decoded). Any ``v1`` entry may match (Stripe sends one per active
    secret while a secret is being rolled); ``v0`` and unknown entries are
    ignored. A header without exactly one integer ``t`` is
    ``webhook_timestamp_invalid``; unlike the Stripe library, timestamps too far
    in the future are refused as well as stale ones.
    """
    if secret is None or not secret.strip():
        raise ServiceUnavailable("webhook_secret_missing", "No webhook secret is configured.")
    body = _raw_body(body)
    if header is None or not header.strip():
        raise BadRequest(
            "webhook_headers_missing",
            "Required webhook headers are missing.",
            details={"missing": ["stripe-signature"]},
        )

    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value.lower())
    if len(timestamps) != 1:
        raise BadRequest("webhook_timestamp_invalid", "The webhook timestamp is not an integer.")
    timestamp = _check_timestamp(timestamps[0], tolerance_seconds, now)

    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest().encode("ascii")
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8"))
    if not matched:
        raise Unauthenticated("webhook_signature_invalid", "The webhook signature does not match.")
    return timestamp
