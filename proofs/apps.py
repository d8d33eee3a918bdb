from django.apps import AppConfig


class ProofsConfig(AppConfig):
    name = "proofs"
    verbose_name = "Proofs"

    def ready(self) -> None:
        from kobatela.core.health_views import DETAIL_SECTIONS
        from proofs.health import proofs_health

        DETAIL_SECTIONS["proofs"] = proofs_health
