from django.core.management.base import BaseCommand

from kobatela.audit import checkpoints


class Command(BaseCommand):
    help = ("Print a new Ed25519 private key for AUDIT_SIGNING_KEY (base64 of the seed). Keep it in a secret "
            "store, never in the database; publish its public key (manage.py audit_public_key).")

    def handle(self, *args, **options):
        self.stdout.write(checkpoints.generate_private_key_text())
