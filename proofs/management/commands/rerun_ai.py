from django.core.management.base import BaseCommand, CommandError

from kobatela.accounts.actor import Actor
from proofs import services
from proofs.models import AiStatus, Proof


class Command(BaseCommand):
    help = "Run the AI advisor again: one proof (--proof ID) or every FAILED one (--all-failed). Runs in-process."

    def add_arguments(self, parser):
        parser.add_argument("--proof", type=int, action="append", default=[])
        parser.add_argument("--all-failed", action="store_true")

    def handle(self, *args, proof, all_failed, **options):
        ids = list(proof)
        if all_failed:
            ids += list(Proof.objects.filter(ai_status=AiStatus.FAILED).values_list("pk", flat=True))
        if not ids:
            raise CommandError("Name proofs with --proof ID, or pass --all-failed.")
        failed = 0
        for proof_id in ids:
            services.proof_requeue_ai(proof_id=proof_id, actor=Actor.system("cli"))
            status = services.proof_run_ai(proof_id=proof_id)
            failed += status != AiStatus.DONE
            self.stdout.write(f"proof {proof_id}: AI {status}")
        if failed:
            raise CommandError(f"{failed} proof(s) still without an AI score.")
