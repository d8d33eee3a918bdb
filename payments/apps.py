from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from kobatela.events.registry import register_resource
        from payments.api import PaymentReadSerializer
        from payments.models import Payment

        register_resource(Payment, object_type="payment", serializer=PaymentReadSerializer)

        from kobatela.accounts.models import User
        from kobatela.accounts.services import add_payout_status_listener
        from payments.payees import PayeeSerializer, payee_on_status_changed

        register_resource(User, object_type="payee", serializer=PayeeSerializer)
        add_payout_status_listener(payee_on_status_changed)
