from django.core.management.base import BaseCommand

from kobatela.core.actor import Actor
from spend import services


class Command(BaseCommand):
    help = "Expire every ACTIVE usage mandate past its expiry now, returning what is left of each budget."

    def handle(self, *args, **options):
        expired = services.mandates_expire_due(actor=Actor.system("cli"))
        self.stdout.write(f"expired {expired} mandate(s)")
