from django.apps import AppConfig


class EscrowConfig(AppConfig):
    name = "escrow"
    verbose_name = "Escrow"

    def ready(self) -> None:
        from escrow import reconcile
        from escrow.api import DisputeReadSerializer, EscrowReadSerializer, RefundReadSerializer
        from escrow.models import Dispute, EscrowAgreement, Refund
        from escrow.services import _milestone_disputed_hold
        from kobatela.events.registry import register_resource
        from payments.holds import register_hold_check
        from payments.reconcile import register_check

        register_resource(EscrowAgreement, object_type="escrow", serializer=EscrowReadSerializer)
        register_resource(Dispute, object_type="dispute", serializer=DisputeReadSerializer)
        register_resource(Refund, object_type="refund", serializer=RefundReadSerializer)
        register_check(reconcile.escrow_disagreements)
        register_check(reconcile.status_disagreements)
        register_check(reconcile.refund_disagreements)
        register_hold_check(_milestone_disputed_hold)
