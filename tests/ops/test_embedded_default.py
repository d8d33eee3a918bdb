"""``make run``'s embedded default — SQLite, eager tasks, local files — takes the
API's money path too: every other test runs on PostgreSQL, so the few places
that speak SQL of their own (``kobatela.core.db``) are tried here on SQLite,
in a process of their own with the settings ``scripts/run.sh`` gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

PROBE = r'''
import json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from kobatela.accounts.models import User
from kobatela.accounts.services import api_key_create
client_user = User.objects.create(email="client@example.com")
provider = User.objects.create(email="provider@example.com")
_, key = api_key_create(actor="system:test", user=client_user, name="probe", scopes=["sender"])
http = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
def post(path, body, **headers):
    answer = http.post(path, body, content_type="application/json", **headers)
    return answer.status_code, answer.json()
created = post("/api/v1/escrows", {"provider_id": provider.pk, "amount_total": "100.00", "currency": "USD",
               "deadline_at": "2030-01-01T00:00:00Z",
               "milestones": [{"label": "all", "amount": "100.00", "proof_type": "PHOTO"}]})
escrow_id = created[1]["id"]
print(json.dumps({
    "created": created[0],
    "deposit": post(f"/api/v1/escrows/{escrow_id}/deposit", {"amount": "40.00"}, HTTP_IDEMPOTENCY_KEY="a"),
    "replay": post(f"/api/v1/escrows/{escrow_id}/deposit", {"amount": "40.00"}, HTTP_IDEMPOTENCY_KEY="a"),
    "missing": post(f"/api/v1/escrows/{escrow_id + 999}/deposit", {"amount": "1.00"}, HTTP_IDEMPOTENCY_KEY="b")[0],
}))
'''


def test_a_deposit_on_the_embedded_sqlite_default(tmp_path: Path):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DATABASE_", "REDIS_", "CELERY_", "PYTEST_", "DJANGO_"))}
    env.update(DJANGO_SETTINGS_MODULE="kobatela.settings", DJANGO_ENV="development", DJANGO_DEBUG="true",
               DJANGO_SECURE_SSL_REDIRECT="false", CELERY_TASK_ALWAYS_EAGER="true", MEDIA_STORAGE="local",
               PSP_PROVIDER="sandbox", PSP_WEBHOOK_SECRET="whsec_probe", MEDIA_ROOT=str(tmp_path / "media"),
               AUDIT_CHECKPOINT_DIR=str(tmp_path / "checkpoints"),
               DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", PYTHONPATH=str(settings.BASE_DIR))
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["created"] == 201
    status, body = result["deposit"]
    assert status == 200 and body["amount_funded"] == "40.00" and [m["idx"] for m in body["milestones"]] == [1]
    assert result["replay"] == result["deposit"]  # the stored answer
    assert result["missing"] == 404
