from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from kobatela.core.money import AmountField, CurrencyField
from kobatela.core.scopes import Scope
from kobatela.core.viewsets import ApiViewMixin, ScopedViewSet
from payments.models import Payment
from spend import selectors, services
from spend.models import (
    AllowedPayee,
    AllowedUsage,
    MandateStatus,
    Merchant,
    PayeeSpend,
    Purchase,
    Sector,
    SpendCategory,
    UsageMandate,
)

MAX_ID = 2**63 - 1


def _id_field(**kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


# --- input ---------------------------------------------------------------------
# These parse and shape (types, lengths, formats). The rules (an expiry in the
# future and after the start, exactly one of merchant and category, …) are
# checked once, by spend.services, whoever calls it.


class MandateCreateSerializer(serializers.Serializer):
    beneficiary_id = _id_field()
    total_amount = AmountField()
    currency = CurrencyField()
    sector = serializers.ChoiceField(choices=Sector.choices, required=False, default=Sector.OTHER)
    allowed_category_ids = serializers.ListField(child=_id_field(), required=False, default=list, max_length=100)
    allowed_merchant_ids = serializers.ListField(child=_id_field(), required=False, default=list, max_length=100)
    starts_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    expires_at = serializers.DateTimeField()


class MandateFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=MandateStatus.choices, required=False)


class PurchaseCreateSerializer(serializers.Serializer):
    mandate_id = _id_field()
    merchant_id = _id_field()
    category_id = _id_field(required=False, allow_null=True, default=None)
    amount = AmountField()
    currency = CurrencyField()


class CategoryCreateSerializer(serializers.Serializer):
    code = serializers.SlugField(max_length=50)
    label = serializers.CharField(max_length=200)


class MerchantCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    category_id = _id_field()
    is_certified = serializers.BooleanField(required=False, default=False)


class AllowedUsageCreateSerializer(serializers.Serializer):
    owner_id = _id_field()
    merchant_id = _id_field(required=False, allow_null=True, default=None)
    category_id = _id_field(required=False, allow_null=True, default=None)


class PayeeAllowSerializer(serializers.Serializer):
    escrow_id = _id_field()
    payee_ref = serializers.CharField(max_length=255)
    label = serializers.CharField(max_length=200)
    daily_limit = AmountField(required=False, allow_null=True, default=None)
    total_limit = AmountField(required=False, allow_null=True, default=None)


class SpendCreateSerializer(serializers.Serializer):
    escrow_id = _id_field()
    payee_ref = serializers.CharField(max_length=255)
    amount = AmountField()
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class PublicMandateFilterSerializer(serializers.Serializer):
    sector = serializers.ChoiceField(choices=Sector.choices, required=False)
    status = serializers.ChoiceField(choices=MandateStatus.choices, required=False)


# --- output --------------------------------------------------------------------


class MandateReadSerializer(serializers.ModelSerializer):
    allowed_category_ids = serializers.SerializerMethodField()
    allowed_merchant_ids = serializers.SerializerMethodField()

    class Meta:
        model = UsageMandate
        fields = ["id", "sender_id", "beneficiary_id", "total_amount", "remaining_amount", "currency", "status",
                  "sector", "starts_at", "expires_at", "allowed_category_ids", "allowed_merchant_ids", "ended_at",
                  "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_allowed_category_ids(self, mandate: UsageMandate) -> list[int]:
        return sorted(c.pk for c in mandate.allowed_categories.all())  # prefetched by the selector

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_allowed_merchant_ids(self, mandate: UsageMandate) -> list[int]:
        return sorted(m.pk for m in mandate.allowed_merchants.all())


class PurchaseReadSerializer(serializers.ModelSerializer):
    mandate = MandateReadSerializer(read_only=True, help_text="The mandate after this purchase.")

    class Meta:
        model = Purchase
        fields = ["id", "mandate_id", "merchant_id", "category_id", "amount", "currency", "created_at", "mandate"]
        read_only_fields = fields


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = SpendCategory
        fields = ["id", "code", "label", "created_at"]
        read_only_fields = fields


class MerchantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Merchant
        fields = ["id", "name", "category_id", "is_certified", "created_at"]
        read_only_fields = fields


class AllowedUsageSerializer(serializers.ModelSerializer):
    class Meta:
        model = AllowedUsage
        fields = ["id", "owner_id", "merchant_id", "category_id", "created_at"]
        read_only_fields = fields


class AllowedPayeeSerializer(serializers.ModelSerializer):
    class Meta:
        model = AllowedPayee
        fields = ["id", "escrow_id", "payee_ref", "label", "daily_limit", "total_limit", "spent_today", "spent_total",
                  "spent_on", "created_at"]
        read_only_fields = fields


class SpendReadSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The spend's id.")
    payment_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Payment.Status.choices, help_text="The payout's status.")
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    currency = serializers.CharField()
    escrow_id = serializers.IntegerField()
    payee_ref = serializers.CharField()
    note = serializers.CharField()
    spent_today = serializers.DecimalField(max_digits=18, decimal_places=2)
    spent_total = serializers.DecimalField(max_digits=18, decimal_places=2)
    daily_limit = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    total_limit = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    created_at = serializers.DateTimeField()

    @staticmethod
    def for_spend(spend: PayeeSpend) -> dict:
        payment, payee = spend.payment, spend.payee
        return SpendReadSerializer({
            "id": spend.pk, "payment_id": payment.pk, "status": payment.status, "amount": spend.amount,
            "currency": payment.currency, "escrow_id": payee.escrow_id, "payee_ref": payee.payee_ref,
            "note": spend.note, "spent_today": payee.spent_today, "spent_total": payee.spent_total,
            "daily_limit": payee.daily_limit, "total_limit": payee.total_limit, "created_at": spend.created_at,
        }).data


# The public read explains each status in plain words. (Distinct labels also give
# this choice set its own OpenAPI enum, apart from the one MandateRead uses.)
PUBLIC_STATUS_CHOICES = [
    (MandateStatus.ACTIVE, "Budget still spendable"),
    (MandateStatus.CONSUMED, "Budget fully spent"),
    (MandateStatus.EXPIRED, "Expired; the unspent budget went back to the sender"),
    (MandateStatus.REVOKED, "Revoked; the unspent budget went back to the sender"),
]


class PublicMandateAggregateSerializer(serializers.Serializer):
    sector = serializers.ChoiceField(choices=Sector.choices)
    status = serializers.ChoiceField(choices=PUBLIC_STATUS_CHOICES)
    currency = serializers.CharField()
    count = serializers.IntegerField()
    total_amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    remaining_amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    spent_amount = serializers.DecimalField(max_digits=18, decimal_places=2)


# --- views ---------------------------------------------------------------------

READERS = {Scope.SENDER, Scope.SUPPORT, Scope.ADMIN}
STAFF = {Scope.ADMIN, Scope.SUPPORT}


class ActionViewSet(ApiViewMixin, viewsets.ViewSet):
    """Scopes and idempotency without a queryset: for endpoints that only
    write (or only aggregate), so there is no object to look up."""


class MandateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    required_scopes = {
        "list": READERS,
        "retrieve": READERS,
        "create": {Scope.SENDER},
        "cleanup": {Scope.SENDER, Scope.ADMIN},
        "revoke": {Scope.SENDER, Scope.ADMIN},
    }
    serializer_class = MandateReadSerializer
    list_filter_serializer = MandateFilterSerializer

    def scoped_queryset(self, actor):
        return selectors.mandate_list_for(actor)

    def _respond(self, mandate_id: int, code: int = status.HTTP_200_OK) -> Response:
        mandate = selectors.mandate_list_for(self.actor).get(pk=mandate_id)
        return Response(MandateReadSerializer(mandate).data, status=code)

    @extend_schema(request=MandateCreateSerializer, responses={201: MandateReadSerializer})
    def create(self, request):
        data = self.validated(MandateCreateSerializer)
        mandate = services.mandate_create(actor=self.actor, **data)
        return self._respond(mandate.pk, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: inline_serializer("MandateCleanup", {"expired": serializers.IntegerField()})})
    @action(detail=False, methods=["post"])
    def cleanup(self, request):
        expired = services.mandates_expire_due(actor=self.actor)
        return Response({"expired": expired}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: MandateReadSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        services.mandate_revoke(actor=self.actor, mandate_id=int(pk))
        return self._respond(int(pk))


class PurchaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    required_scopes = {"list": READERS, "retrieve": READERS, "create": {Scope.SENDER, Scope.ADMIN}}
    idempotency_required_actions = frozenset({"create"})
    serializer_class = PurchaseReadSerializer

    def scoped_queryset(self, actor):
        return selectors.purchase_list_for(actor)

    @extend_schema(request=PurchaseCreateSerializer, responses={201: PurchaseReadSerializer})
    def create(self, request):
        payload = self.validated(PurchaseCreateSerializer)
        purchase = services.purchase_create(actor=self.actor, idempotency_key=request.headers["Idempotency-Key"],
                                            **payload)
        return Response(PurchaseReadSerializer(purchase).data, status=status.HTTP_201_CREATED)


class CategoryViewSet(mixins.ListModelMixin, ScopedViewSet):
    required_scopes = {"list": READERS, "create": STAFF}
    serializer_class = CategorySerializer

    def scoped_queryset(self, actor):
        return selectors.category_list()

    @extend_schema(request=CategoryCreateSerializer, responses={201: CategorySerializer})
    def create(self, request):
        payload = self.validated(CategoryCreateSerializer)
        category = services.category_create(actor=self.actor, **payload)
        return Response(CategorySerializer(category).data, status=status.HTTP_201_CREATED)


class MerchantViewSet(mixins.ListModelMixin, ScopedViewSet):
    required_scopes = {"list": READERS, "create": STAFF}
    serializer_class = MerchantSerializer

    def scoped_queryset(self, actor):
        return selectors.merchant_list()

    @extend_schema(request=MerchantCreateSerializer, responses={201: MerchantSerializer})
    def create(self, request):
        payload = self.validated(MerchantCreateSerializer)
        merchant = services.merchant_create(actor=self.actor, **payload)
        return Response(MerchantSerializer(merchant).data, status=status.HTTP_201_CREATED)


class AllowedUsageViewSet(ActionViewSet):
    required_scopes = {"create": STAFF}

    @extend_schema(request=AllowedUsageCreateSerializer, responses={201: AllowedUsageSerializer})
    def create(self, request):
        payload = self.validated(AllowedUsageCreateSerializer)
        rule = services.allowed_usage_create(actor=self.actor, **payload)
        return Response(AllowedUsageSerializer(rule).data, status=status.HTTP_201_CREATED)


class AllowedPayeeViewSet(ActionViewSet):
    required_scopes = {"create": STAFF}

    @extend_schema(request=PayeeAllowSerializer, responses={201: AllowedPayeeSerializer})
    def create(self, request):
        payload = self.validated(PayeeAllowSerializer)
        payee = services.payee_allow(actor=self.actor, **payload)
        return Response(AllowedPayeeSerializer(payee).data, status=status.HTTP_201_CREATED)


class SpendViewSet(ActionViewSet):
    required_scopes = {"create": {Scope.SENDER, Scope.ADMIN}}
    idempotency_required_actions = frozenset({"create"})

    @extend_schema(request=SpendCreateSerializer, responses={200: SpendReadSerializer})
    def create(self, request):
        data = self.validated(SpendCreateSerializer)
        spend = services.payee_spend(actor=self.actor, idempotency_key=request.headers["Idempotency-Key"],
                                     **data)
        # Read back after commit: the payout may already have left (eager tasks).
        spend = selectors.payee_spend_get(spend.pk)
        return Response(SpendReadSerializer.for_spend(spend), status=status.HTTP_200_OK)


class PublicMandateViewSet(ActionViewSet):
    """Aggregates for public bodies: counts and sums, never a person or a mandate."""

    required_scopes = {"list": {Scope.GOV, Scope.ONG}}

    @extend_schema(
        parameters=[PublicMandateFilterSerializer],
        responses={200: inline_serializer("PublicMandates", {"results": PublicMandateAggregateSerializer(many=True)})},
    )
    def list(self, request):
        rows = selectors.public_mandate_aggregates(**self.validated_query(PublicMandateFilterSerializer))
        return Response({"results": PublicMandateAggregateSerializer(rows, many=True).data})
