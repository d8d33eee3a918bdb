from pathlib import Path

from django.core.management.base import BaseCommand

from kobatela.core.storage_backup import storage_export


class Command(BaseCommand):
    help = "Copy every object of the default storage (proof files) into a folder, with a SHA-256 list (backups)."

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, type=Path, help="folder to write into (created)")

    def handle(self, *args, to: Path, **options):
        to.mkdir(parents=True, exist_ok=True)
        copied = storage_export(to=to)
        with open(to.parent / f"{to.name}.sha256", "w") as listing:
            for name, digest, _ in copied:
                listing.write(f"{digest}  {name}\n")
        self.stdout.write(f"exported {len(copied)} objects, {sum(size for *_, size in copied)} bytes")
