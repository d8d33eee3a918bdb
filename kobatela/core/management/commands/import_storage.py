from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from kobatela.core.storage_backup import storage_import


class Command(BaseCommand):
    help = "Store every file of a folder made by export_storage into the default storage (restores)."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="source", required=True, type=Path, help="folder written by export_storage")

    def handle(self, *args, source: Path, **options):
        if not source.is_dir():
            raise CommandError(f"{source} is not a folder")
        self.stdout.write(f"imported {storage_import(source=source)} objects")
