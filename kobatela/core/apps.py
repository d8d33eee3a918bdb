from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "kobatela.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from kobatela.core import checks  # noqa: F401  (registers the system checks)
