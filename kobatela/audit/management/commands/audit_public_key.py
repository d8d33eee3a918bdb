from django.core.management.base import BaseCommand, CommandError

from kobatela.audit import checkpoints


class Command(BaseCommand):
    help = "Print the public key(s) that verify the audit checkpoints (for auditors): key id, base64, PEM."

    def handle(self, *args, **options):
        keys = checkpoints.verification_keys()
        if not keys:
            raise CommandError("No audit signing key configured (AUDIT_SIGNING_KEY / AUDIT_SIGNING_KEY_FILE).")
        for key_id, key in keys.items():
            self.stdout.write(f"key_id {key_id}")
            self.stdout.write(f"base64 {checkpoints.b64(checkpoints.public_bytes(key))}")
            self.stdout.write(checkpoints.public_key_pem(key))
