"""Backup and restore, proven (issue #18): a database with escrows, deposits,
payouts, proofs (their files too) and audit rows is backed up with
scripts/backup.sh, restored into a fresh database and an empty storage with
scripts/restore.sh, and the restored copy passes `reconcile` and
`verify_audit_chain`. Prints the measured backup and restore times (the RPO
and RTO figures of docs/operations/database-failover-restore.md)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.support.databases import ROOT, database_env, fresh_database

pytestmark = pytest.mark.slow

SEED = """
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from escrow.models import EscrowAgreement
from kobatela.audit.models import AuditLog
from kobatela.core.actor import Actor
from payments.models import Payment
from proofs.models import Proof
from proofs.services import proof_decide, proof_submit
from tests.factories import actor_for, fund, make_escrow
from tests.proofs.photo_samples import geotagged_jpeg

support = Actor(label="test:support", user=None, scopes=frozenset({"support"}))
for i in range(3):
    escrow = fund(make_escrow(amounts=("40.00", "60.00")))
    proof = proof_submit(actor=actor_for(escrow.client), escrow_id=escrow.pk, milestone_idx=1,
                         proof_type="PHOTO", upload=SimpleUploadedFile(
                             f"site-{i}.jpg", geotagged_jpeg(None, None, timezone.now()), content_type="image/jpeg"))
    if proof.status == "PENDING":
        proof_decide(actor=support, proof_id=proof.pk, decision="approve", note="backup drill")
print("COUNTS", EscrowAgreement.objects.count(), Payment.objects.count(), Proof.objects.count(), AuditLog.objects.count())
"""

COUNTS = """
from escrow.models import EscrowAgreement
from kobatela.audit.models import AuditLog
from payments.models import Payment
from proofs.models import Proof
from django.core.files.storage import default_storage
files = sum(default_storage.exists(p.file.name) for p in Proof.objects.all())
print("COUNTS", EscrowAgreement.objects.count(), Payment.objects.count(), Proof.objects.count(), AuditLog.objects.count(), files)
"""


def _env(url: str, media: Path, checkpoints: Path) -> dict[str, str]:
    """A production-like process environment (not the test settings, whose media folder is per process);
    the audit checkpoints' sink is the drill's own (it outlives the database, as in production)."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))},
            "DJANGO_SETTINGS_MODULE": "kobatela.settings", "DJANGO_ENV": "test", **database_env(url),
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(64), "DJANGO_SECURE_SSL_REDIRECT": "false",
            "CELERY_TASK_ALWAYS_EAGER": "true", "MEDIA_STORAGE": "local", "MEDIA_ROOT": str(media),
            "LOG_LEVEL": "WARNING", "PYTHON": sys.executable, "AUDIT_CHECKPOINT_STORAGE": "local",
            "AUDIT_CHECKPOINT_DIR": str(checkpoints)}


def _run(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{argv}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _counts(output: str) -> list[int]:
    return [int(x) for x in next(ln for ln in output.splitlines() if ln.startswith("COUNTS")).split()[1:]]


def test_a_backup_restores_into_a_fresh_database_that_reconciles_and_verifies(tmp_path):
    with fresh_database("kobatela_backup_src") as source, fresh_database("kobatela_backup_dst") as target:
        source_env = _env(source, tmp_path / "media-source", tmp_path / "audit-checkpoints")
        target_env = _env(target, tmp_path / "media-restored", tmp_path / "audit-checkpoints")
        _run([sys.executable, "manage.py", "migrate", "--noinput"], source_env)
        seeded = _counts(_run([sys.executable, "manage.py", "shell", "-c", SEED], source_env))
        escrows, payments, proofs, audit_rows = seeded
        assert escrows == 3 and payments >= 3 and proofs == 3 and audit_rows > 10, seeded

        started = time.monotonic()
        folder = Path(_run(["bash", "scripts/backup.sh", str(tmp_path / "backups")], source_env).splitlines()[-1])
        backup_seconds = time.monotonic() - started
        manifest = (folder / "MANIFEST").read_text()
        assert "artefacts checkpoint database storage" in manifest and (folder / "database.dump").stat().st_size > 0
        checkpoint = json.loads((folder / "audit-checkpoint.json").read_text())
        assert checkpoint["verified"] and checkpoint["checkpoint"]["row_count"] >= audit_rows
        assert len(list((folder / "storage").rglob("*.jpg"))) == 3

        started = time.monotonic()
        restored = _run(["bash", "scripts/restore.sh", "--verify", str(folder)], target_env)
        restore_seconds = time.monotonic() - started
        assert "Audit chain OK" in restored, restored
        after = _counts(_run([sys.executable, "manage.py", "shell", "-c", COUNTS], target_env))
        assert after == [escrows, payments, proofs, audit_rows, proofs], (seeded, after)

        # A restore never lands on a database that has tables (the live one by mistake).
        refused = subprocess.run(["bash", "scripts/restore.sh", str(folder)], cwd=ROOT, env=target_env,
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode != 0 and "empty database" in refused.stderr

        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        with psycopg.connect(source) as conn:
            db_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    print(f"\nbackup/restore drill: database {db_bytes / 1e6:.1f} MB ({audit_rows} audit rows), backup {size / 1e3:.0f} kB")
    print(f"  backup took {backup_seconds:.2f}s  -> RPO = backup interval + {backup_seconds:.2f}s")
    print(f"  restore + reconcile + verify_audit_chain took {restore_seconds:.2f}s  -> measured RTO {restore_seconds:.2f}s")
    print("  " + restored.strip().replace("\n", "\n  "))
