"""The shared shape of the commands that send proofs back through a job."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from kobatela.core.actor import Actor
from proofs.models import Proof


class ProofBatchCommand(BaseCommand):
    """``--proof ID`` (repeatable) or ``--all-failed``; subclasses say what
    "failed" means and what to do with one proof (returns a line to print,
    and whether it still failed)."""

    failed = Q()

    def add_arguments(self, parser):
        parser.add_argument("--proof", type=int, action="append", default=[])
        parser.add_argument("--all-failed", action="store_true")

    def handle_one(self, proof_id: int, actor: Actor) -> tuple[str, bool]:
        raise NotImplementedError

    def handle(self, *args, proof, all_failed, **options):
        ids = list(proof)
        if all_failed:
            ids += list(Proof.objects.filter(self.failed).values_list("pk", flat=True))
        if not ids:
            raise CommandError("Name proofs with --proof ID, or pass --all-failed.")
        still_failing = 0
        for proof_id in ids:
            line, failed = self.handle_one(proof_id, Actor.system("cli"))
            still_failing += failed
            self.stdout.write(f"proof {proof_id}: {line}")
        if still_failing:
            raise CommandError(f"{still_failing} proof(s) still failing.")
