from django.core.management.base import BaseCommand, CommandError

from payments.reconcile import reconcile


class Command(BaseCommand):
    help = "Check every money invariant against the ledger; exit non-zero listing what disagrees."

    def handle(self, *args, **options):
        problems = reconcile()
        if problems:
            for line in problems:
                self.stderr.write(f"  - {line}")
            raise CommandError(f"Reconciliation FAILED: {len(problems)} disagreement(s).")
        self.stdout.write(self.style.SUCCESS("Reconciliation OK: ledger, escrows and payments agree."))
