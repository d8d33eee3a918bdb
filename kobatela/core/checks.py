"""System checks that refuse an unsafe production start (``DJANGO_ENV=production``).

They run with every management command and at server start; an Error stops
``runserver``/``migrate`` and fails ``manage.py check --deploy``. Gunicorn
runs them at import through ``kobatela.wsgi``.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError

MIN_SECRET_KEY_LENGTH = 50


@register(Tags.security, deploy=False)
def production_settings_check(app_configs, **kwargs) -> list[Error]:
    if not settings.IS_PRODUCTION:
        return []
    errors: list[Error] = []
    if settings.DEBUG:
        errors.append(Error("DJANGO_DEBUG is on in production.", hint="Set DJANGO_DEBUG=false.", id="kobatela.E001"))
    key = settings.SECRET_KEY or ""
    if key == settings.INSECURE_SECRET_KEY or len(key) < MIN_SECRET_KEY_LENGTH or len(set(key)) < 5:
        errors.append(
            Error(
                "DJANGO_SECRET_KEY is the default or too short.",
                hint=f"Set DJANGO_SECRET_KEY to a random value of at least {MIN_SECRET_KEY_LENGTH} characters.",
                id="kobatela.E002",
            )
        )
    if not os.environ.get("PSP_WEBHOOK_SECRET"):
        errors.append(
            Error(
                "PSP_WEBHOOK_SECRET is not set: PSP webhooks could not be verified.",
                hint="Set PSP_WEBHOOK_SECRET (whsec_<base64> or a long random string).",
                id="kobatela.E003",
            )
        )
    if settings.AI_PROOF_ADVISOR_ENABLED and not settings.OPENAI_API_KEY:
        errors.append(
            Error(
                "AI_PROOF_ADVISOR_ENABLED is on but OPENAI_API_KEY is empty.",
                hint="Set OPENAI_API_KEY or turn the advisor off.",
                id="kobatela.E004",
            )
        )
    if not settings.CELERY_TASK_ALWAYS_EAGER and settings.CELERY_BROKER_URL.startswith("memory://"):
        errors.append(
            Error(
                "CELERY_BROKER_URL is the in-memory default: queued tasks would be lost.",
                hint="Point CELERY_BROKER_URL at Redis, or set CELERY_TASK_ALWAYS_EAGER=true for a single process.",
                id="kobatela.E005",
            )
        )
    return errors


@register(Tags.security, deploy=False)
def database_role_check(app_configs, **kwargs) -> list[Warning]:
    """In production the application must not connect as a superuser or as the tables' owner:
    either could switch the audit log's protection off (README "Operations")."""
    if not settings.IS_PRODUCTION:
        return []
    from kobatela.core.roles import privilege_problems

    try:
        problems = privilege_problems()
    except DatabaseError:
        return []  # no database yet: readiness reports it
    return [Warning(
        f"The application's database role {problem}: it could rewrite or remove audit and ledger rows.",
        hint="Connect as the application role (DATABASE_URL) and migrate as the owner (DATABASE_OWNER_URL); "
             "see README, Operations.",
        id="kobatela.W010",
    ) for problem in problems]
