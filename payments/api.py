from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from kobatela.audit.reads import AuditedReadsMixin
from kobatela.core.scopes import Scope
from kobatela.core.viewsets import ID_PATTERN, ScopedViewSet
from payments import selectors, services
from payments.models import Payment, PaymentStatus


class PaymentReadSerializer(serializers.ModelSerializer):
    blocked_reason = serializers.SerializerMethodField(
        help_text="Why a PENDING payout waits (payee_not_verified, payee_paused), else null.")

    def get_blocked_reason(self, payment: Payment) -> str | None:
        return payment.blocked_reason or None

    class Meta:
        model = Payment
        fields = ["id", "escrow_id", "milestone_id", "amount", "currency", "status", "blocked_reason", "psp_ref",
                  "attempts", "last_error", "failure_code", "scheduled_for", "created_at", "updated_at"]
        read_only_fields = fields


class PaymentFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=PaymentStatus.choices, required=False)
    escrow_id = serializers.RegexField(rf"^{ID_PATTERN}$", required=False)


READERS = {Scope.SENDER, Scope.SUPPORT, Scope.ADMIN}


class PaymentViewSet(AuditedReadsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    required_scopes = {"list": READERS, "retrieve": READERS, "execute": {Scope.SENDER, Scope.ADMIN}}
    idempotency_required_actions = frozenset({"execute"})
    # Calls the PSP between two short transactions: not inside an idempotency unit.
    idempotency_outside_unit_actions = frozenset({"execute"})
    serializer_class = PaymentReadSerializer
    list_filter_serializer = PaymentFilterSerializer
    audit_name = "payment"  # GET /payments/{id} and GET /payments leave an audit row, as GET /escrows/{id}

    def scoped_queryset(self, actor):
        return selectors.payment_list_for(actor)


    @extend_schema(request=None, responses={200: PaymentReadSerializer})
    @action(detail=True, methods=["post"])
    def execute(self, request, pk=None):
        payment = services.payment_execute(payment_id=int(pk), actor=self.actor, scoped_to=self.actor,
                                           resumed=getattr(request, "idempotency_resumed", False))
        return Response(PaymentReadSerializer(payment).data)
