"""PSP adapters behind one interface (:mod:`payments.psp.base`).

``get_provider()`` returns the provider chosen by ``settings.PSP_PROVIDER``
(``sandbox`` — the default — or ``stripe``), one shared instance per name::

    from payments.psp import PayoutRequest, PspTransientError, get_provider

    result = get_provider().create_payout(PayoutRequest(payment_id=p.id, amount=p.amount,
                                                        currency=p.currency, destination=p.destination))

Settings are read lazily, inside :func:`get_provider`, so importing this
package needs no configured Django (the adapters and their tests run without
it). Tests that change ``PSP_PROVIDER``/``STRIPE_API_KEY`` call
:func:`reset_providers`.
"""

from __future__ import annotations

import threading

from .base import (
    FundingSession,
    FundingSessionRequest,
    PaymentProvider,
    PayoutRequest,
    PayoutResult,
    PayoutStatus,
    PspError,
    PspPermanentError,
    PspTransientError,
    payout_idempotency_key,
)

__all__ = [
    "FundingSession",
    "FundingSessionRequest",
    "PaymentProvider",
    "PayoutRequest",
    "PayoutResult",
    "PayoutStatus",
    "PspError",
    "PspPermanentError",
    "PspTransientError",
    "PROVIDERS",
    "get_provider",
    "payout_idempotency_key",
    "reset_providers",
]

PROVIDERS = ("sandbox", "stripe")

_lock = threading.Lock()
_instances: dict[str, PaymentProvider] = {}


def _build(name: str) -> PaymentProvider:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    if name == "sandbox":
        from .sandbox import SandboxProvider

        return SandboxProvider()
    # name == "stripe" (checked by the caller)
    api_key = getattr(settings, "STRIPE_API_KEY", "")
    if not api_key:
        raise ImproperlyConfigured("PSP_PROVIDER=stripe needs STRIPE_API_KEY.")
    from .stripe_adapter import StripeProvider

    # STRIPE_API_BASE is optional and not in settings.py: only set by a
    # settings override that points Stripe at a local fake.
    return StripeProvider(api_key, api_base=getattr(settings, "STRIPE_API_BASE", None) or None)


def get_provider(name: str | None = None) -> PaymentProvider:
    """The provider named ``name``, else ``settings.PSP_PROVIDER``; cached per name.

    Unknown names (and ``stripe`` without ``STRIPE_API_KEY``) raise
    ``ImproperlyConfigured``.
    """
    from django.core.exceptions import ImproperlyConfigured

    if name is None:
        from django.conf import settings

        name = getattr(settings, "PSP_PROVIDER", "sandbox")
    key = str(name).strip().lower()
    if key not in PROVIDERS:
        raise ImproperlyConfigured(f"Unknown PSP_PROVIDER {name!r}; expected one of {', '.join(PROVIDERS)}.")
    provider = _instances.get(key)
    if provider is None:
        with _lock:
            provider = _instances.get(key)
            if provider is None:
                provider = _instances[key] = _build(key)
    return provider


def reset_providers() -> None:
    """Drop cached instances (after a settings change in tests)."""
    with _lock:
        _instances.clear()
