from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from kobatela.core.money import AmountField, CurrencyField
from kobatela.core.scopes import Scope
from kobatela.core.viewsets import ApiViewMixin, ScopedViewSet
from payments.models import AllowlistEntry, Certification, CertificationLevel, Transaction
from payments.transactions import selectors, services

MAX_ID = 2**63 - 1


def _id_field() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID)


class AllowlistCreateSerializer(serializers.Serializer):
    owner_id = _id_field()
    recipient_id = _id_field()


class AllowlistEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AllowlistEntry
        fields = ["id", "owner_id", "recipient_id", "created_at"]
        read_only_fields = fields


class CertificationCreateSerializer(serializers.Serializer):
    user_id = _id_field()
    level = serializers.ChoiceField(choices=CertificationLevel.choices)


class CertificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Certification
        fields = ["id", "user_id", "level", "created_at", "updated_at"]
        read_only_fields = fields


class TransactionCreateSerializer(serializers.Serializer):
    sender_id = _id_field()
    receiver_id = _id_field()
    amount = AmountField()
    currency = CurrencyField()


class TransactionReadSerializer(serializers.ModelSerializer):
    class Meta:
        model = Transaction
        fields = ["id", "sender_id", "receiver_id", "amount", "currency", "status", "created_at"]
        read_only_fields = fields


ADMIN = {Scope.ADMIN}


class AllowlistViewSet(ApiViewMixin, viewsets.ViewSet):  # write-only: no object to look up
    required_scopes = {"create": ADMIN}

    @extend_schema(request=AllowlistCreateSerializer, responses={201: AllowlistEntrySerializer})
    def create(self, request):
        payload = self.validated(AllowlistCreateSerializer)
        entry = services.allowlist_add(actor=self.actor, **payload)
        return Response(AllowlistEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class CertificationViewSet(ApiViewMixin, viewsets.ViewSet):  # write-only: no object to look up
    required_scopes = {"create": ADMIN}

    @extend_schema(request=CertificationCreateSerializer, responses={201: CertificationSerializer})
    def create(self, request):
        payload = self.validated(CertificationCreateSerializer)
        certification = services.certification_set(actor=self.actor, **payload)
        return Response(CertificationSerializer(certification).data, status=status.HTTP_201_CREATED)


class TransactionViewSet(mixins.RetrieveModelMixin, ScopedViewSet):
    required_scopes = {"create": ADMIN, "retrieve": ADMIN}
    idempotency_required_actions = frozenset({"create"})
    serializer_class = TransactionReadSerializer

    def scoped_queryset(self, actor):
        return selectors.transaction_list()

    @extend_schema(request=TransactionCreateSerializer, responses={201: TransactionReadSerializer})
    def create(self, request):
        payload = self.validated(TransactionCreateSerializer)
        txn = services.transaction_create(actor=self.actor, idempotency_key=request.headers["Idempotency-Key"],
                                          **payload)
        return Response(TransactionReadSerializer(txn).data, status=status.HTTP_201_CREATED)
