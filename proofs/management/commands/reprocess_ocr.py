from django.core.management.base import BaseCommand, CommandError

from kobatela.accounts.actor import Actor
from proofs import services
from proofs.models import OcrStatus, Proof


class Command(BaseCommand):
    help = "Send proofs back through OCR: one (--proof ID) or every FAILED one (--all-failed)."

    def add_arguments(self, parser):
        parser.add_argument("--proof", type=int, action="append", default=[])
        parser.add_argument("--all-failed", action="store_true")

    def handle(self, *args, proof, all_failed, **options):
        ids = list(proof)
        if all_failed:
            ids += list(Proof.objects.filter(ocr_status=OcrStatus.FAILED).values_list("pk", flat=True))
        if not ids:
            raise CommandError("Name proofs with --proof ID, or pass --all-failed.")
        for proof_id in ids:
            services.proof_requeue_ocr(proof_id=proof_id, actor=Actor.system("cli"))
            self.stdout.write(f"proof {proof_id}: OCR queued")
