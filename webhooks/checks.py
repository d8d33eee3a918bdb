"""Refuse to start production with outbound webhooks allowed to reach private networks."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security)
def webhook_targets_check(app_configs, **kwargs) -> list[Error]:
    if settings.IS_PRODUCTION and getattr(settings, "WEBHOOK_ALLOW_PRIVATE_TARGETS", False):
        return [Error(
            "WEBHOOK_ALLOW_PRIVATE_TARGETS is on in production: integrators' webhook URLs could reach "
            "internal services (SSRF).",
            hint="Unset WEBHOOK_ALLOW_PRIVATE_TARGETS; it is meant for local runs and tests.",
            id="webhooks.E001",
        )]
    return []
