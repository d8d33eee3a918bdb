import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from kobatela.audit import checkpoints


class Command(BaseCommand):
    help = ("Print the latest signed audit checkpoint of the external sink as JSON (--latest), or verify a "
            "checkpoint document with a public key (--verify FILE [--public-key KEY]).")

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--latest", action="store_true")
        group.add_argument("--verify", metavar="FILE")
        parser.add_argument("--public-key", help="base64 or PEM; default: the configured keys")

    def handle(self, *args, **options):
        if options["public_key"]:
            key = checkpoints.parse_public_key(options["public_key"])
            keys = {checkpoints.key_id_of(key): key}
        else:
            keys = checkpoints.verification_keys()
        if options["latest"]:
            name = checkpoints.latest_external_name()
            if name is None:
                raise CommandError("No checkpoint in the external sink yet.")
            document = checkpoints.read_external(name)
        else:
            name = options["verify"]
            document = json.loads(Path(name).read_text())
        try:
            cp = checkpoints.parse_document(document, keys, name=name)
        except checkpoints.CheckpointInvalid as exc:
            raise CommandError(f"{name}: {exc}") from exc
        self.stdout.write(json.dumps({**document, "name": name, "verified": True,
                                      "checkpoint": json.loads(cp.payload)}, sort_keys=True))
