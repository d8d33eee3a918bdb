from django.core.management.base import BaseCommand, CommandError

from kobatela.accounts.models import User
from kobatela.accounts.services import api_key_create, user_create
from kobatela.core.scopes import Scope


class Command(BaseCommand):
    help = "Create an API key (and its account when missing). The plaintext key is printed alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--scopes", required=True, help="Comma-separated: " + ", ".join(Scope.values))
        parser.add_argument("--name", default="cli")
        parser.add_argument("--full-name", default="")
        parser.add_argument("--kind", default=User.Kind.COMPANY, choices=User.Kind.values)

    def handle(self, *args, email, scopes, name, full_name, kind, **options):
        wanted = [s.strip() for s in scopes.split(",") if s.strip()]
        unknown = sorted(set(wanted) - set(Scope.values))
        if not wanted or unknown:
            raise CommandError(f"Unknown or missing scopes: {unknown or wanted}. Allowed: {', '.join(Scope.values)}")
        actor = "system:cli"
        user = User.objects.filter(email=email.strip().lower()).first()
        if user is None:
            user = user_create(actor=actor, email=email, full_name=full_name or email.split("@")[0], kind=kind)
            self.stdout.write(f"Created account {user.email} (id={user.pk}).")
        api_key, plaintext = api_key_create(actor=actor, user=user, name=name, scopes=wanted)
        self.stdout.write(f"Created API key {api_key.prefix} (id={api_key.pk}) with scopes {','.join(api_key.scopes)}.")
        self.stdout.write(plaintext)
