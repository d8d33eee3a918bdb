from django.db.models import Q

from proofs import services
from proofs.management.batch import ProofBatchCommand
from proofs.models import OcrStatus


class Command(ProofBatchCommand):
    help = "Send proofs back through OCR: one (--proof ID) or every FAILED one (--all-failed)."
    failed = Q(ocr_status=OcrStatus.FAILED)

    def handle_one(self, proof_id, actor):
        services.proof_requeue_ocr(proof_id=proof_id, actor=actor)
        return "OCR queued", False
