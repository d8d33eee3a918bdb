from django.core.management.base import BaseCommand, CommandError

from kobatela.audit.chain import audit_seal


class Command(BaseCommand):
    help = "Seal the audit rows written since the last run and write a signed checkpoint (as the beat job does)."

    def handle(self, *args, **options):
        result = audit_seal()
        if result.skipped:
            self.stdout.write("Another sealer is running; nothing done.")
            return
        if result.refused:
            raise CommandError(f"Sealing refused: {result.refused}")
        self.stdout.write(f"Sealed {result.sealed} rows; chain head at seq {result.head_seq}.")
        if result.checkpoint is not None:
            self.stdout.write(f"Checkpoint written: {result.checkpoint.external_name}")
        if result.checkpoint_error:
            raise CommandError(f"Checkpoint not written: {result.checkpoint_error}")
