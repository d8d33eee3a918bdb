from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from kobatela.accounts.models import User
        from kobatela.accounts.services import add_payout_status_listener
        from kobatela.core.clock import register_clock_job
        from kobatela.core.metrics import register_collector
        from kobatela.core.roles import register_append_only
        from kobatela.events.registry import register_resource
        from payments.api import PaymentReadSerializer
        from payments.metrics import payout_gauges
        from payments.models import Payment
        from payments.payees import PayeeSerializer, payee_on_status_changed
        from payments.services import payments_sweep

        register_append_only("payments.LedgerEntry")  # the application role may only read and insert lines
        register_resource(Payment, object_type="payment", serializer=PaymentReadSerializer)
        register_collector("payouts", payout_gauges)
        register_clock_job("payout_sweep", lambda now: payments_sweep(now=now))
        register_resource(User, object_type="payee", serializer=PayeeSerializer)
        add_payout_status_listener(payee_on_status_changed)
