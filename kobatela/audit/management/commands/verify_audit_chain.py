from django.core.management.base import BaseCommand, CommandError

from kobatela.audit.services import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain; exit non-zero naming the first broken row."

    def handle(self, *args, **options):
        report = audit_chain_verify()
        if not report.ok:
            raise CommandError(
                f"Audit chain BROKEN at row id={report.first_broken_id}: {report.reason} "
                f"({report.checked} rows checked)."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain OK: {report.checked} rows verified."))
