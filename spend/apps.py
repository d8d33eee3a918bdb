from django.apps import AppConfig


class SpendConfig(AppConfig):
    name = "spend"
    verbose_name = "Spend and mandates"

    def ready(self) -> None:
        from kobatela.events.registry import register_resource
        from payments.reconcile import register_check
        from spend import reconcile
        from spend.api import MandateReadSerializer
        from spend.models import UsageMandate

        register_resource(UsageMandate, object_type="mandate", serializer=MandateReadSerializer)
        register_check(reconcile.mandate_disagreements)

        from kobatela.core.clock import register_clock_job
        from spend.services import mandates_expire_due

        register_clock_job("mandate_expiry",
                           lambda now: mandates_expire_due(actor="system:test_clock", now=now))
