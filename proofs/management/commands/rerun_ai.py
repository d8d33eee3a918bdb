from django.db.models import Q

from proofs import services
from proofs.management.batch import ProofBatchCommand
from proofs.models import AiStatus


class Command(ProofBatchCommand):
    help = "Run the AI advisor again: one proof (--proof ID) or every FAILED one (--all-failed). Runs in-process."
    failed = Q(ai_status=AiStatus.FAILED)

    def handle_one(self, proof_id, actor):
        services.proof_requeue_ai(proof_id=proof_id, actor=actor)
        status = services.proof_run_ai(proof_id=proof_id)
        return f"AI {status}", status != AiStatus.DONE
