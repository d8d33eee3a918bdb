"""Migrations checked on every `make test` (issue #18): the models and the
migrations agree, and every app migrates down to zero and back up on an empty
database — every data migration has a reverse function."""

from __future__ import annotations

import time

import pytest

from tests.support.databases import fresh_database, manage

pytestmark = pytest.mark.slow

# Highest layer first, so each `migrate <app> zero` finds nothing above it still applied.
APPS = ["webhooks", "spend", "proofs", "escrow", "payments", "events", "accounts", "audit", "core"]


def test_the_models_need_no_new_migration():
    with fresh_database() as url:
        done = manage(url, "makemigrations", "--check", "--dry-run", check=False)
    assert done.returncode == 0, f"models and migrations disagree:\n{done.stdout}{done.stderr}"


# One process for the whole round trip (a Django start per step would double the time).
ROUND_TRIP = """
from django.core.management import call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

APPS = {apps!r}
call_command("migrate", interactive=False, verbosity=0)
for app in APPS:
    call_command("migrate", app, "zero", interactive=False, verbosity=0)
left = MigrationRecorder(connection).applied_migrations()
assert not [key for key in left if key[0] in APPS], sorted(key for key in left if key[0] in APPS)
call_command("migrate", interactive=False, verbosity=0)
print("round trip ok")
"""


def test_every_app_migrates_to_zero_and_back_on_an_empty_database():
    with fresh_database() as url:
        started = time.monotonic()
        done = manage(url, "shell", "-c", ROUND_TRIP.format(apps=APPS))
        assert "round trip ok" in done.stdout
        plan = manage(url, "showmigrations", "--plan").stdout
        assert "[ ]" not in plan, plan  # everything applied again
        print(f"\nmigrations: up, every app down to zero, up again in {time.monotonic() - started:.1f}s")
