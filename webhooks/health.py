import os

from django.conf import settings

from webhooks.signing import fingerprint


def _secret_fingerprint(name: str) -> dict:
    value = os.environ.get(name) or None
    return {"configured": value is not None, "fingerprint": fingerprint(value)}


def psp_health() -> dict:
    """Which PSP, and which webhook secrets are configured, for the detailed /health
    (fingerprints only, never values)."""
    return {
        "provider": settings.PSP_PROVIDER,
        "webhook_secret": _secret_fingerprint("PSP_WEBHOOK_SECRET"),
        "webhook_secret_next": _secret_fingerprint("PSP_WEBHOOK_SECRET_NEXT"),
        "stripe_webhook_secret": _secret_fingerprint("STRIPE_WEBHOOK_SECRET"),
    }
