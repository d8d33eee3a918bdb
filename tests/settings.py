"""Test settings: the real settings, read from the environment that
``scripts/test.sh`` prepares (throwaway PostgreSQL and Redis), plus what only
tests need."""

import os
import tempfile

os.environ.setdefault("DJANGO_ENV", "test")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-" + "x" * 40)
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
# Accounts made by tests are payable, as every account was before payee verification
# existed; the payee-verification tests make unverified payees explicitly.
os.environ.setdefault("PAYOUT_STATUS_DEFAULT", "verified")  # the test client speaks plain HTTP

# The audit checkpoints: signed with a key made for this run, kept in a directory of its own.
if not os.environ.get("AUDIT_SIGNING_KEY"):
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    os.environ["AUDIT_SIGNING_KEY"] = base64.b64encode(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())).decode()
os.environ["AUDIT_CHECKPOINT_STORAGE"] = "local"
os.environ["AUDIT_CHECKPOINT_DIR"] = tempfile.mkdtemp(prefix="kobatela-test-checkpoints-")

from kobatela.settings import *  # noqa: E402,F403

MEDIA_ROOT = tempfile.mkdtemp(prefix="kobatela-test-media-")
STATIC_ROOT = tempfile.mkdtemp(prefix="kobatela-test-static-")
# Fast hashing for staff passwords made in tests; API keys use SHA-256 regardless.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Each xdist worker gets its own cache namespace on the shared Redis.
CACHES["default"]["KEY_PREFIX"] = "test-" + os.environ.get("PYTEST_XDIST_WORKER", "main")  # noqa: F405
# Every test request comes from 127.0.0.1: the per-address limit of upload links would
# couple unrelated tests; tests/proofs/test_upload_links.py sets it where it tests it.
UPLOAD_LINK_RATE_PER_IP = 100_000
UPLOAD_LINK_RATE_PER_LINK = 1_000
