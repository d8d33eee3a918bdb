"""Django's ``migrate``, run as the database owner when ``DATABASE_OWNER_URL`` is set
(``kobatela.core.roles``): tables belong to the owner, and the application
role's privileges are granted at the end (``post_migrate``)."""

from django.core.management.commands import migrate

from kobatela.core import roles


class Command(migrate.Command):
    def handle(self, *args, **options):
        with roles.as_owner(options["database"]):
            return super().handle(*args, **options)
