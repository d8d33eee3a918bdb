import json
from datetime import timedelta
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from kobatela.audit.chain import audit_chain_verify


class Command(BaseCommand):
    help = ("Verify the sealed audit chain row by row and against every signed checkpoint kept outside the "
            "database; exit non-zero listing each problem with its range of sequence numbers.")

    def add_arguments(self, parser):
        parser.add_argument("--no-external", action="store_true",
                            help="Skip the external checkpoints (the chain's own consistency only).")
        parser.add_argument("--days", type=int, default=None,
                            help="Only the external checkpoints of the last N days (default: all of them).")
        parser.add_argument("--checkpoint", action="append", default=[], metavar="FILE",
                            help="Also a signed checkpoint document (JSON), e.g. the one a backup carries.")

    def handle(self, *args, **options):
        since = None
        if options["days"] is not None:
            since = f"{timezone.now() - timedelta(days=options['days']):%Y-%m-%d}"
        documents = []
        for name in options["checkpoint"]:
            try:
                documents.append((name, json.loads(Path(name).read_text())))
            except (OSError, ValueError) as exc:
                raise CommandError(f"{name}: cannot read a checkpoint document ({exc})") from exc
        report = audit_chain_verify(external=not options["no_external"], since_day=since, documents=documents)
        latest = report.latest_checkpoint
        summary = (f"{report.checked} sealed rows (up to seq {report.head_seq}), {report.unsealed} not sealed yet, "
                   f"{report.checkpoints_checked} signed checkpoints"
                   + (f", latest up to seq {latest.last_seq} at {latest.created_at}" if latest else ""))
        if not report.ok:
            for problem in report.problems:
                self.stderr.write(str(problem))
            raise CommandError(f"Audit chain BROKEN: {len(report.problems)} problem(s); {summary}.")
        self.stdout.write(self.style.SUCCESS(f"Audit chain OK: {summary}."))
