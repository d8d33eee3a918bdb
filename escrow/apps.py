from django.apps import AppConfig


class EscrowConfig(AppConfig):
    name = "escrow"
    verbose_name = "Escrow"

    def ready(self) -> None:
        from escrow import reconcile
        from escrow.api import DisputeReadSerializer, EscrowReadSerializer, RefundReadSerializer
        from escrow.deadlines import escrows_apply_deadlines
        from escrow.metrics import dispute_gauges, refund_gauges
        from escrow.models import Dispute, EscrowAgreement, Refund
        from escrow.refunds import refunds_sweep
        from escrow.services import _milestone_disputed_hold, escrow_release_due_inspections
        from kobatela.core.clock import register_clock_job
        from kobatela.core.metrics import register_collector
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
        register_collector("disputes", dispute_gauges)
        register_collector("refunds", refund_gauges)
        register_clock_job("escrow_deadlines", lambda now: escrows_apply_deadlines(now=now))
        register_clock_job("inspection_windows", lambda now: escrow_release_due_inspections(now=now))
        register_clock_job("refund_sweep", lambda now: refunds_sweep())
