from django.db.models import Q

from proofs import services
from proofs.management.batch import ProofBatchCommand
from proofs.models import AiStatus


class Command(ProofBatchCommand):
    help = ("Send proofs back to the AI advisor: one proof (--proof ID) or every FAILED one (--all-failed). "
            "Queues the job only (a worker runs it, after its claim); never calls the model in-process.")
    failed = Q(ai_status=AiStatus.FAILED)

    def handle_one(self, proof_id, actor):
        services.proof_requeue_ai(proof_id=proof_id, actor=actor)
        return "AI queued", False
