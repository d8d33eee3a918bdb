"""proofs 0004 (SUPERSEDED, review priority, photo hashes) migrates back and forth."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("proofs", "0003_upload_links")]
AFTER = [("proofs", "0004_superseded_review_priority_photo_hash")]


def migrate(targets=None):
    """``manage.py migrate`` (as the tables' owner, like every migration), then the models at that state."""
    if targets is None:
        call_command("migrate", verbosity=0)
        return None
    [(app, name)] = targets
    call_command("migrate", app, name, verbosity=0)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def test_back_to_0003_and_forward_again():
    from tests.factories import fund, make_escrow

    escrow = fund(make_escrow(proof_type="INVOICE", amounts=("10.00",)))
    apps = migrate(AFTER)
    Proof = apps.get_model("proofs", "Proof")
    common = dict(owner_id=escrow.client_id, escrow_id=escrow.pk, milestone_id=escrow.milestones.get().pk,
                  type="INVOICE", file="x.pdf", size=1, content_type="application/pdf")
    superseded = Proof.objects.create(sha256="a" * 64, status="SUPERSEDED", **common)
    running = Proof.objects.create(sha256="b" * 64, ai_status="RUNNING",
                                   backend_checks={"overall": "fail", "checks": {"amount": {"status": "fail"}}}, **common)
    try:
        old = migrate(BEFORE).get_model("proofs", "Proof")
        assert old.objects.get(pk=superseded.pk).status == "REJECTED"
        assert old.objects.get(pk=running.pk).ai_status == "QUEUED"
        new = migrate(AFTER).get_model("proofs", "Proof")
        backfilled = new.objects.get(pk=running.pk)
        assert backfilled.review_priority == 300 and backfilled.review_flags == ["check_failed:amount"]
    finally:
        migrate()
