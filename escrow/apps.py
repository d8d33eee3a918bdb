from django.apps import AppConfig


class EscrowConfig(AppConfig):
    name = "escrow"
    verbose_name = "Escrow"

    def ready(self) -> None:
        from escrow import reconcile
        from escrow.api import EscrowReadSerializer
        from escrow.models import EscrowAgreement
        from kobatela.events.registry import register_resource
        from payments.reconcile import register_check

        register_resource(EscrowAgreement, object_type="escrow", serializer=EscrowReadSerializer)
        register_check(reconcile.escrow_disagreements)
        register_check(reconcile.status_disagreements)

        from escrow.services import escrows_apply_deadlines
        from kobatela.core.clock import register_clock_job

        register_clock_job("escrow_deadlines", lambda now: escrows_apply_deadlines(now=now))
