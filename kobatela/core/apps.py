from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "kobatela.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from kobatela.core import checks  # noqa: F401  (registers the system checks)
        from kobatela.core.metrics import register_collector
        from kobatela.core.metrics_collectors import periodic_job_ages, queue_depth
        from kobatela.core.roles import grant_application_role

        register_collector("queues", queue_depth)
        register_collector("periodic_jobs", periodic_job_ages)
        post_migrate.connect(grant_application_role, sender=self, dispatch_uid="kobatela.core.roles.grants")
