from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from kobatela.events.registry import register_resource
        from payments.api import PaymentReadSerializer
        from payments.models import Payment

        register_resource(Payment, object_type="payment", serializer=PaymentReadSerializer)

        from kobatela.core.clock import register_clock_job
        from payments.services import payments_sweep

        register_clock_job("payout_sweep", lambda now: payments_sweep(now=now))
