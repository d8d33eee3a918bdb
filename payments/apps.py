from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from kobatela.core.roles import register_append_only
        from kobatela.events.registry import register_resource
        from payments.api import PaymentReadSerializer
        from payments.models import Payment

        register_append_only("payments.LedgerEntry")  # the application role may only read and insert lines
        register_resource(Payment, object_type="payment", serializer=PaymentReadSerializer)
