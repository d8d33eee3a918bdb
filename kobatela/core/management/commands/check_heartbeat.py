from django.core.management.base import BaseCommand, CommandError

from kobatela.core.health import heartbeat_age_seconds


class Command(BaseCommand):
    help = ("Exit non-zero when the scheduler heartbeat (beat → worker → database) is older than --max-age "
            "seconds or missing: the beat container's healthcheck.")

    def add_arguments(self, parser):
        parser.add_argument("--max-age", type=int, default=120, help="seconds (default 120: four missed beats)")

    def handle(self, *args, max_age: int, **options):
        age = heartbeat_age_seconds()
        if age is None:
            raise CommandError("no scheduler heartbeat recorded (or the database is unreachable)")
        if age > max_age:
            raise CommandError(f"scheduler heartbeat is {age}s old (more than {max_age}s)")
        self.stdout.write(f"scheduler heartbeat {age}s old")
