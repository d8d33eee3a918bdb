import os
import subprocess
import sys
from pathlib import Path

import pytest

from kobatela.core.checks import production_settings_check

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k" * 20 + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


@pytest.fixture
def production(settings, monkeypatch):
    settings.IS_PRODUCTION = True
    settings.DEBUG = False
    settings.SECRET_KEY = GOOD_KEY
    settings.AI_PROOF_ADVISOR_ENABLED = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/1"
    monkeypatch.setenv("PSP_WEBHOOK_SECRET", "whsec_dGVzdA==")
    return settings


def ids(errors):
    return sorted(e.id for e in errors)


def test_safe_production_passes(production):
    assert production_settings_check(None) == []


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda s, env: setattr(s, "DEBUG", True), "kobatela.E001"),
        (lambda s, env: setattr(s, "SECRET_KEY", s.INSECURE_SECRET_KEY), "kobatela.E002"),
        (lambda s, env: setattr(s, "SECRET_KEY", "short"), "kobatela.E002"),
        (lambda s, env: env.delenv("PSP_WEBHOOK_SECRET"), "kobatela.E003"),
        (lambda s, env: (setattr(s, "AI_PROOF_ADVISOR_ENABLED", True), setattr(s, "OPENAI_API_KEY", "")), "kobatela.E004"),
        (lambda s, env: setattr(s, "CELERY_BROKER_URL", "memory://"), "kobatela.E005"),
    ],
)
def test_unsafe_production_is_refused(production, monkeypatch, change, expected):
    change(production, monkeypatch)
    assert expected in ids(production_settings_check(None))


def test_development_is_not_checked(settings):
    settings.IS_PRODUCTION = False
    settings.DEBUG = True
    assert production_settings_check(None) == []


def _manage(*args, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PSP_", "AI_", "OPENAI_"))}
    clean.update(DJANGO_SETTINGS_MODULE="kobatela.settings", **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120)


def test_unsafe_production_start_is_refused_by_manage_py():
    result = _manage("check", DJANGO_ENV="production", DJANGO_DEBUG="true")
    assert result.returncode != 0
    assert "kobatela.E001" in result.stderr and "kobatela.E002" in result.stderr and "kobatela.E003" in result.stderr


def test_unsafe_production_start_is_refused_by_wsgi():
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PSP_"))}
    clean.update(DJANGO_SETTINGS_MODULE="kobatela.settings", DJANGO_ENV="production")
    result = subprocess.run([sys.executable, "-c", "import kobatela.wsgi"], cwd=ROOT, env=clean,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "Refusing to start" in result.stderr


def test_check_deploy_is_clean_behind_tls():
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_ENV="production", DJANGO_DEBUG="false", DJANGO_SECRET_KEY=GOOD_KEY,
        DJANGO_ALLOWED_HOSTS="api.kobatela.example", DJANGO_SECURE_SSL_REDIRECT="true",
        PSP_WEBHOOK_SECRET="whsec_dGVzdA==", CELERY_BROKER_URL="redis://127.0.0.1:6379/1",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
