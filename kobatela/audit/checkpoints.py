"""Signed checkpoints of the audit chain, and the sink outside the database that keeps them.

A checkpoint says where the sealed chain ended: the last sequence number,
the head hash, how many rows are sealed up to it, and when. Its ``payload``
(canonical JSON) is signed with Ed25519; the private key comes from the
environment (``AUDIT_SIGNING_KEY`` or ``AUDIT_SIGNING_KEY_FILE``), never from
the database. Each checkpoint is written as one JSON document to the storage
``AUDIT_CHECKPOINT_STORAGE`` names (a local directory, or S3 through
django-storages with Object Lock when ``AUDIT_CHECKPOINT_OBJECT_LOCK_DAYS`` is
set), and logged. An auditor verifies a document with the public key alone
(``manage.py audit_public_key``, ``manage.py audit_checkpoint --verify``).

Document::

    {"payload": "<the signed JSON text>", "signature": "<base64>",
     "key_id": "<16 hex>", "public_key": "<base64 of the 32-byte key>"}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.utils import timezone
from storages.backends.s3 import S3Storage

logger = logging.getLogger("kobatela.audit.checkpoint")

STORAGE_ALIAS = "audit_checkpoints"
PREFIX = "checkpoints"
FORMAT_VERSION = 1


class CheckpointS3Storage(S3Storage):
    """S3 with Object Lock on every checkpoint written (COMPLIANCE mode, for
    ``AUDIT_CHECKPOINT_OBJECT_LOCK_DAYS`` days) when that setting is above 0.
    The bucket must have been created with Object Lock enabled."""

    def get_object_parameters(self, name):
        params = super().get_object_parameters(name)
        days = settings.AUDIT_CHECKPOINT_OBJECT_LOCK_DAYS
        if days > 0:
            params["ObjectLockMode"] = "COMPLIANCE"
            params["ObjectLockRetainUntilDate"] = timezone.now() + timedelta(days=days)
        return params


# -- keys ---------------------------------------------------------------------------

def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_bytes(key)).hexdigest()[:16]


def generate_private_key_text() -> str:
    """A new private key as AUDIT_SIGNING_KEY takes it: base64 of the 32-byte seed."""
    key = Ed25519PrivateKey.generate()
    return b64(key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                  serialization.NoEncryption()))


def _parse_private(text: str) -> Ed25519PrivateKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ImproperlyConfigured("AUDIT_SIGNING_KEY is a PEM key but not an Ed25519 one.")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ImproperlyConfigured("AUDIT_SIGNING_KEY is neither PEM nor base64.") from exc
    if len(raw) != 32:
        raise ImproperlyConfigured("AUDIT_SIGNING_KEY must be the base64 of a 32-byte Ed25519 seed.")
    return Ed25519PrivateKey.from_private_bytes(raw)


def signing_key() -> Ed25519PrivateKey | None:
    """The private key from AUDIT_SIGNING_KEY (or the file AUDIT_SIGNING_KEY_FILE names); None when unset."""
    text = settings.AUDIT_SIGNING_KEY
    if not text and settings.AUDIT_SIGNING_KEY_FILE:
        text = Path(settings.AUDIT_SIGNING_KEY_FILE).read_text()
    return _parse_private(text) if text else None


def parse_public_key(text: str) -> Ed25519PublicKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))


def verification_keys() -> dict[str, Ed25519PublicKey]:
    """key_id → public key: the signing key's own, and the retired or external ones of AUDIT_PUBLIC_KEYS."""
    keys = [parse_public_key(text) for text in settings.AUDIT_PUBLIC_KEYS if text.strip()]
    private = signing_key()
    if private is not None:
        keys.append(private.public_key())
    return {key_id_of(key): key for key in keys}


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# -- documents ----------------------------------------------------------------------

@dataclass(frozen=True)
class SignedCheckpoint:
    last_seq: int
    head_hash: str
    row_count: int
    created_at: str
    key_id: str
    payload: str
    signature: str
    public_key: str
    name: str = ""

    def document(self) -> dict:
        return {"payload": self.payload, "signature": self.signature, "key_id": self.key_id,
                "public_key": self.public_key}


def sign(*, last_seq: int, head_hash: str, row_count: int, at: datetime) -> SignedCheckpoint:
    key = signing_key()
    if key is None:
        raise ImproperlyConfigured("No audit signing key: set AUDIT_SIGNING_KEY (manage.py audit_keygen makes one).")
    public = key.public_key()
    fields = {"version": FORMAT_VERSION, "last_seq": last_seq, "head_hash": head_hash, "row_count": row_count,
              "created_at": at.isoformat(), "key_id": key_id_of(public)}
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return SignedCheckpoint(last_seq=last_seq, head_hash=head_hash, row_count=row_count, created_at=fields["created_at"],
                            key_id=fields["key_id"], payload=payload, signature=b64(key.sign(payload.encode())),
                            public_key=b64(public_bytes(public)))


class CheckpointInvalid(Exception):
    pass


def parse_document(document: dict, keys: dict[str, Ed25519PublicKey], *, name: str = "") -> SignedCheckpoint:
    """The checkpoint a document holds, once its signature verified with one of ``keys``
    (the key the document itself carries is never trusted); CheckpointInvalid otherwise."""
    try:
        payload, signature = document["payload"], base64.b64decode(document["signature"], validate=True)
        fields = json.loads(payload)
        key = keys.get(fields["key_id"])
        if key is None:
            raise CheckpointInvalid(f"signed by an unknown key {fields['key_id']!r}")
        key.verify(signature, payload.encode())
        return SignedCheckpoint(last_seq=int(fields["last_seq"]), head_hash=fields["head_hash"],
                                row_count=int(fields["row_count"]), created_at=fields["created_at"],
                                key_id=fields["key_id"], payload=payload, signature=document["signature"],
                                public_key=b64(public_bytes(key)), name=name)
    except InvalidSignature as exc:
        raise CheckpointInvalid("bad signature") from exc
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise CheckpointInvalid(f"malformed checkpoint: {exc}") from exc


# -- the external sink -------------------------------------------------------------------

def storage():
    return storages[STORAGE_ALIAS]


def write_external(checkpoint: SignedCheckpoint, at: datetime) -> str:
    """Write the document to the sink (never over an existing one) and log it; return its name."""
    name = f"{PREFIX}/{at:%Y-%m-%d}/{at:%Y%m%dT%H%M%S%fZ}-{checkpoint.last_seq:020d}.json"
    saved = storage().save(name, ContentFile(json.dumps(checkpoint.document(), sort_keys=True).encode()))
    logger.info("audit checkpoint", extra={"checkpoint": checkpoint.document(), "checkpoint_name": saved})
    return saved


def external_names(since_day: str | None = None) -> list[str]:
    """The checkpoint documents in the sink (those of days >= ``since_day``, YYYY-MM-DD), oldest first."""
    store = storage()
    try:
        days, _ = store.listdir(PREFIX)
    except FileNotFoundError:
        return []
    names = []
    for day in sorted(d for d in days if since_day is None or d >= since_day):
        _, files = store.listdir(f"{PREFIX}/{day}")
        names.extend(f"{PREFIX}/{day}/{name}" for name in sorted(files) if name.endswith(".json"))
    return names


def read_external(name: str) -> dict:
    with storage().open(name, "rb") as handle:
        return json.loads(handle.read())


def latest_external_name() -> str | None:
    store = storage()
    try:
        days, _ = store.listdir(PREFIX)
    except FileNotFoundError:
        return None
    for day in sorted(days, reverse=True):
        _, files = store.listdir(f"{PREFIX}/{day}")
        files = sorted(name for name in files if name.endswith(".json"))
        if files:
            return f"{PREFIX}/{day}/{files[-1]}"
    return None
