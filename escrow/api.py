from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from escrow import deadlines, disputes, refunds, selectors, services
from escrow.models import (
    Dispute,
    DisputeStatus,
    EscrowAgreement,
    EscrowEvent,
    EscrowStatus,
    Milestone,
    ProofType,
    RefundStatus,
)
from escrow.rules import ACTIONS, allowed_actions
from kobatela.accounts.openapi import ErrorSerializer
from kobatela.audit import services as audit
from kobatela.core.money import AmountField, CurrencyField
from kobatela.core.pagination import CursorPagination
from kobatela.core.scopes import Scope
from kobatela.core.serializers import StrictCharField, represent
from kobatela.core.viewsets import ID_PATTERN, ScopedViewSet
from payments.psp.base import PspPermanentError, PspTransientError
from payments.psp.sandbox import SandboxProvider
from payments.psp.stripe_adapter import StripeProvider

COORDINATE = {"max_digits": 9, "decimal_places": 6}


# --- input ---------------------------------------------------------------------


class GeofenceSerializer(serializers.Serializer):
    lat = serializers.DecimalField(min_value=Decimal("-90"), max_value=Decimal("90"), **COORDINATE)
    lng = serializers.DecimalField(min_value=Decimal("-180"), max_value=Decimal("180"), **COORDINATE)
    radius_m = serializers.DecimalField(max_digits=9, decimal_places=2, min_value=Decimal("1"), max_value=Decimal("100000"))


class ProofRequirementsSerializer(serializers.Serializer):
    """The keys a milestone may expect of its proofs; anything else is refused."""

    expected_amount = AmountField(required=False)
    currency = CurrencyField(required=False)
    amount_tolerance = AmountField(required=False, allow_zero=True)
    iban_last4 = serializers.RegexField(r"^[A-Za-z0-9]{4}$", required=False)
    supplier = serializers.CharField(max_length=200, required=False)
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    max_photo_age_hours = serializers.IntegerField(min_value=1, max_value=24 * 365, required=False)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({key: ["Unknown requirement."] for key in unknown})
        values = super().to_internal_value(data)
        if values.get("date_from") and values.get("date_to") and values["date_from"] > values["date_to"]:
            raise serializers.ValidationError({"date_to": ["Must not be before date_from."]})
        # Stored as JSON: decimals and dates as strings.
        return {key: str(value) if not isinstance(value, int) else value for key, value in values.items()}


class MilestoneInputSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=200)
    amount = AmountField()
    proof_type = serializers.ChoiceField(choices=ProofType.choices)
    proof_requirements = ProofRequirementsSerializer(required=False)
    geofence = GeofenceSerializer(required=False, allow_null=True)


class EscrowCreateSerializer(serializers.Serializer):
    provider_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    amount_total = AmountField()
    currency = CurrencyField()
    deadline_at = serializers.DateTimeField()
    release_conditions = serializers.DictField(required=False, help_text=(
        "A JSON object of your own, stored and returned as given; Kobatela does not interpret it."))
    milestones = MilestoneInputSerializer(many=True, min_length=1, max_length=50)
    # Hours an approved milestone waits before it pays out (a dispute opened meanwhile stops it).
    inspection_hours = serializers.IntegerField(min_value=0, max_value=24 * 90, required=False, default=0)


class DepositSerializer(serializers.Serializer):
    amount = AmountField()


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class DisputeOpenSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=2000)
    milestone_idx = serializers.IntegerField(min_value=1, max_value=50, required=False)


class DisputeMessageInputSerializer(serializers.Serializer):
    body = StrictCharField(max_length=5000)


class DisputeResolveSerializer(serializers.Serializer):
    release_amount = AmountField(allow_zero=True)
    refund_amount = AmountField(allow_zero=True)
    note = StrictCharField(max_length=2000)


class RefundCreateSerializer(serializers.Serializer):
    amount = AmountField(required=False)
    reason = StrictCharField(max_length=2000)


# --- output --------------------------------------------------------------------


# The read serializers declare their fields rather than introspecting the
# model (ModelSerializer): they run on every escrow response, deposits
# included, and building fields from the model is most of their cost.
class MilestoneReadSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    idx = serializers.IntegerField()
    label = serializers.CharField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    status = serializers.ChoiceField(choices=Milestone.Status.choices)
    proof_type = serializers.ChoiceField(choices=ProofType.choices)
    proof_requirements = serializers.SerializerMethodField()
    geofence = serializers.SerializerMethodField()

    @extend_schema_field(ProofRequirementsSerializer)
    def get_proof_requirements(self, milestone: Milestone) -> dict:
        return milestone.proof_requirements  # as stored: decimals and dates as strings

    @extend_schema_field(GeofenceSerializer(allow_null=True))
    def get_geofence(self, milestone: Milestone):
        if not milestone.has_geofence:
            return None
        return {"lat": str(milestone.geofence_lat), "lng": str(milestone.geofence_lng),
                "radius_m": str(milestone.geofence_radius_m)}


class EscrowReadSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    client_id = serializers.IntegerField()
    provider_id = serializers.IntegerField()
    amount_total = serializers.DecimalField(max_digits=18, decimal_places=2)
    amount_funded = serializers.DecimalField(max_digits=18, decimal_places=2)
    amount_released = serializers.DecimalField(max_digits=18, decimal_places=2)
    amount_refunded = serializers.DecimalField(max_digits=18, decimal_places=2)
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=EscrowStatus.choices)
    deadline_at = serializers.DateTimeField()
    inspection_hours = serializers.IntegerField()
    release_conditions = serializers.DictField(help_text=(
        "A JSON object of your own (e.g. a contract reference), stored and returned as given; "
        "Kobatela does not interpret it. `{}` when none was given."))
    milestones = MilestoneReadSerializer(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="EscrowRead")  # the contract's name for what every escrow answer is
class EscrowReadForCallerSerializer(EscrowReadSerializer):
    """EscrowRead as an API answer: with the actions the caller may take now (``escrow.actions``)."""

    allowed_actions = serializers.ListField(child=serializers.ChoiceField(choices=sorted(ACTIONS)), read_only=True)


@extend_schema_serializer(component_name="ProviderEscrowRead")
class ProviderEscrowReadSerializer(EscrowReadForCallerSerializer):
    """EscrowRead for its provider: without the client's personal data (no client id)."""

    client_id = None  # a declared field removed: the client stays unknown to the provider


def escrow_body(escrow: EscrowAgreement, actor, serializer=EscrowReadSerializer) -> dict:
    """An escrow as its caller reads it: the Read serializer's fields and ``allowed_actions``."""
    return {**represent(serializer, escrow), "allowed_actions": allowed_actions(escrow, actor)}


class DeadlineOutcomeSerializer(serializers.Serializer):
    applied = serializers.BooleanField(help_text="False when the deadline has not passed or was already handled.")
    policy = serializers.ChoiceField(choices=["auto_approve", "notify", "refund"])
    approved = serializers.ListField(child=serializers.IntegerField(), help_text="Milestone idx approved and paid.")
    notified = serializers.ListField(child=serializers.IntegerField(), help_text="Milestone idx left without proof.")
    refunded = serializers.DecimalField(max_digits=18, decimal_places=2)


@extend_schema_serializer(component_name="EscrowDeadlineChecked")
class EscrowDeadlineCheckedSerializer(EscrowReadForCallerSerializer):
    deadline_outcome = DeadlineOutcomeSerializer(help_text="What the deadline policy did on this call.")


class DisputeMessageSerializer(serializers.Serializer):
    author = serializers.CharField()
    body = serializers.CharField()
    created_at = serializers.DateTimeField()


class DisputeResolutionSerializer(serializers.Serializer):
    release_amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    refund_amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    note = serializers.CharField(source="resolution_note")
    resolved_by = serializers.CharField()
    resolved_at = serializers.DateTimeField()


class DisputeReadSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    escrow_id = serializers.IntegerField()
    milestone_ids = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=DisputeStatus.choices)
    opened_by = serializers.CharField()
    reason = serializers.CharField()
    amount_held = serializers.DecimalField(max_digits=18, decimal_places=2)
    messages = DisputeMessageSerializer(many=True)
    resolution = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_milestone_ids(self, dispute: Dispute) -> list[int]:
        return sorted(m.pk for m in dispute.milestones.all())

    @extend_schema_field(DisputeResolutionSerializer(allow_null=True))
    def get_resolution(self, dispute: Dispute):
        if dispute.status != DisputeStatus.RESOLVED:
            return None
        return DisputeResolutionSerializer(dispute).data


class RefundReadSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    escrow_id = serializers.IntegerField()
    dispute_id = serializers.IntegerField(allow_null=True)
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=RefundStatus.choices)
    psp_ref = serializers.CharField()
    reason = serializers.CharField()
    failure_code = serializers.CharField()
    created_at = serializers.DateTimeField()


class EscrowEventSerializer(serializers.ModelSerializer):
    data = serializers.DictField(read_only=True, help_text="What the step recorded (amounts, idx, notes…).")
    type = serializers.CharField(read_only=True, help_text=(
        "The same change in the events API's vocabulary (`escrow.funded`, `milestone.paid`…), as `GET /events` "
        "and webhooks name it; `kind` is the timeline's short name (`funded`)."))

    class Meta:
        model = EscrowEvent
        fields = ["id", "kind", "type", "data", "actor", "created_at"]
        read_only_fields = fields


class FundingSessionSerializer(serializers.Serializer):
    session_id = serializers.CharField()
    provider = serializers.CharField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    currency = serializers.CharField()
    redirect_url = serializers.CharField(allow_null=True)
    client_secret = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField()


class TimelinePagination(CursorPagination):
    ordering = ("created_at", "id")


class EscrowFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=EscrowStatus.choices, required=False)


# --- views ---------------------------------------------------------------------

READERS = {Scope.SENDER, Scope.SUPPORT, Scope.ADMIN}


class EscrowViewSet(ScopedViewSet):
    required_scopes = {
        "list": READERS,
        "retrieve": READERS,
        "events": READERS,
        "create": {Scope.SENDER},
        # The scopes of the actions listed in allowed_actions come from their one table.
        "deposit": ACTIONS["deposit"].scopes,
        "funding_session": {Scope.SENDER, Scope.ADMIN},
        "mark_delivered": ACTIONS["mark_delivered"].scopes,
        "client_approve": ACTIONS["approve"].scopes,
        "client_reject": ACTIONS["reject"].scopes,
        "check_deadline": {Scope.SENDER, Scope.ADMIN},
        "disputes": ACTIONS["dispute"].scopes,
        "refund": ACTIONS["refund"].scopes,
        "cancel": ACTIONS["cancel"].scopes,
    }
    idempotency_required_actions = frozenset({"deposit", "disputes", "refund"})
    # Reached through the configured adapter (get_provider()), which no reading of the code can follow.
    raises = {"funding_session": (PspPermanentError, PspTransientError, SandboxProvider.create_funding_session,
                                  StripeProvider.create_funding_session)}
    # Calls the PSP between two short transactions: not inside an idempotency unit.
    idempotency_outside_unit_actions = frozenset({"funding_session"})
    serializer_class = EscrowReadForCallerSerializer
    list_filter_serializer = EscrowFilterSerializer

    def scoped_queryset(self, actor):
        return selectors.escrow_list_for(actor)

    def _respond(self, escrow: EscrowAgreement, code: int = status.HTTP_200_OK) -> Response:
        """The escrow a service returned, with its milestones as they are after commit (one query)."""
        selectors.escrow_prefetch_milestones(escrow)
        return Response(escrow_body(escrow, self.actor), status=code)

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([escrow_body(escrow, self.actor) for escrow in page])

    @extend_schema(request=EscrowCreateSerializer, responses={201: EscrowReadForCallerSerializer}, examples=[
        OpenApiExample("Two milestones: a geofenced photo, then an invoice", request_only=True, value={
            "provider_id": 42, "amount_total": "1000.00", "currency": "USD", "deadline_at": "2030-01-01T00:00:00Z",
            "release_conditions": {"contract_ref": "PO-2026-118"},
            "milestones": [
                {"label": "Foundations poured", "amount": "600.00", "proof_type": "PHOTO",
                 "geofence": {"lat": "-4.322447", "lng": "15.307045", "radius_m": "200.00"}},
                {"label": "Materials invoice", "amount": "400.00", "proof_type": "INVOICE",
                 "proof_requirements": {"expected_amount": "400.00", "currency": "USD"}}]}),
        OpenApiExample("Created", response_only=True, status_codes=["201"], value={
            "id": 981, "client_id": 17, "provider_id": 42, "amount_total": "1000.00", "amount_funded": "0.00",
            "amount_released": "0.00", "amount_refunded": "0.00", "currency": "USD", "status": "DRAFT",
            "deadline_at": "2030-01-01T00:00:00Z", "release_conditions": {"contract_ref": "PO-2026-118"},
            "milestones": [
                {"id": 3301, "idx": 1, "label": "Foundations poured", "amount": "600.00", "status": "WAITING",
                 "proof_type": "PHOTO", "proof_requirements": {},
                 "geofence": {"lat": "-4.322447", "lng": "15.307045", "radius_m": "200.00"}},
                {"id": 3302, "idx": 2, "label": "Materials invoice", "amount": "400.00", "status": "WAITING",
                 "proof_type": "INVOICE", "proof_requirements": {"expected_amount": "400.00", "currency": "USD"},
                 "geofence": None}],
            "created_at": "2026-12-04T09:00:00Z", "updated_at": "2026-12-04T09:00:00Z"}),
    ])
    def create(self, request):
        data = self.validated(EscrowCreateSerializer)
        escrow = services.escrow_create(actor=self.actor, **data)
        return self._respond(escrow, status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        escrow = self.get_object()
        audit.record(self.actor, "escrow.read", escrow, {})
        return Response(escrow_body(escrow, self.actor))

    @extend_schema(request=DepositSerializer, responses={200: EscrowReadForCallerSerializer}, examples=[
        OpenApiExample("Fund the whole escrow", request_only=True, value={"amount": "1000.00"})])
    @action(detail=True, methods=["post"])
    def deposit(self, request, pk=None):
        data = self.validated(DepositSerializer)
        escrow = services.escrow_deposit(actor=self.actor, escrow_id=int(pk), amount=data["amount"],
                                         idempotency_key=request.headers["Idempotency-Key"],
                                         account_id=self.actor.user_id)
        return self._respond(escrow)

    # 502: the PSP refused to open the session (503 when it is unavailable, as everywhere).
    @extend_schema(request=None, responses={201: FundingSessionSerializer, 502: ErrorSerializer})
    @action(detail=True, methods=["post"], url_path="funding-session")
    def funding_session(self, request, pk=None):
        session = services.escrow_funding_session(actor=self.actor, escrow_id=int(pk))
        return Response(FundingSessionSerializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=NoteSerializer, responses={200: EscrowReadForCallerSerializer})
    @action(detail=True, methods=["post"], url_path="mark-delivered")
    def mark_delivered(self, request, pk=None):
        data = self.validated(NoteSerializer)
        escrow = services.escrow_mark_delivered(actor=self.actor, escrow_id=int(pk), note=data["note"])
        return self._respond(escrow)

    @extend_schema(request=NoteSerializer, responses={200: EscrowReadForCallerSerializer})
    @action(detail=True, methods=["post"], url_path="client-approve")
    def client_approve(self, request, pk=None):
        data = self.validated(NoteSerializer)
        escrow = services.escrow_client_approve(actor=self.actor, escrow_id=int(pk), note=data["note"])
        return self._respond(escrow)

    @extend_schema(request=ReasonSerializer, responses={200: EscrowReadForCallerSerializer})
    @action(detail=True, methods=["post"], url_path="client-reject")
    def client_reject(self, request, pk=None):
        data = self.validated(ReasonSerializer)
        escrow = services.escrow_client_reject(actor=self.actor, escrow_id=int(pk), reason=data["reason"])
        return self._respond(escrow)

    @extend_schema(request=None, responses={200: EscrowDeadlineCheckedSerializer})
    @action(detail=True, methods=["post"], url_path="check-deadline")
    def check_deadline(self, request, pk=None):
        outcome = deadlines.escrow_check_deadline(actor=self.actor, escrow_id=int(pk))
        escrow = selectors.escrow_list_for(self.actor).get(pk=pk)  # milestones prefetched, after the service committed
        # EscrowRead like every other lifecycle action, with what the policy did added.
        return Response({**escrow_body(escrow, self.actor), "deadline_outcome": outcome.as_dict()})

    @extend_schema(responses={200: EscrowEventSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def events(self, request, pk=None):
        escrow = self.get_object()
        paginator = TimelinePagination()
        page = paginator.paginate_queryset(selectors.escrow_events_for(escrow), request, view=self)
        return paginator.get_paginated_response(EscrowEventSerializer(page, many=True).data)

    @extend_schema(request=DisputeOpenSerializer, responses={201: DisputeReadSerializer})
    @action(detail=True, methods=["post"])
    def disputes(self, request, pk=None):
        data = self.validated(DisputeOpenSerializer)
        dispute = disputes.dispute_open(actor=self.actor, escrow_id=int(pk), reason=data["reason"],
                                        milestone_idx=data.get("milestone_idx"))
        return Response(represent(DisputeReadSerializer, dispute), status=status.HTTP_201_CREATED)

    @extend_schema(request=RefundCreateSerializer, responses={201: RefundReadSerializer})
    @action(detail=True, methods=["post"])
    def refund(self, request, pk=None):
        data = self.validated(RefundCreateSerializer)
        refund = refunds.escrow_refund(actor=self.actor, escrow_id=int(pk), amount=data.get("amount"),
                                       reason=data["reason"])
        return Response(represent(RefundReadSerializer, refund), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: EscrowReadForCallerSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._respond(services.escrow_cancel(actor=self.actor, escrow_id=int(pk)))

class ProviderEscrowViewSet(ScopedViewSet):
    """``/provider/escrows``: a provider's inbox — the escrows its account is paid from."""

    required_scopes = {"list": {Scope.PROVIDER}, "retrieve": {Scope.PROVIDER}}
    serializer_class = ProviderEscrowReadSerializer
    list_filter_serializer = EscrowFilterSerializer

    def scoped_queryset(self, actor):
        return selectors.escrow_list_for_provider(actor)

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(
            [escrow_body(escrow, self.actor, ProviderEscrowReadSerializer) for escrow in page])

    def retrieve(self, request, pk=None):
        escrow = self.get_object()
        audit.record(self.actor, "escrow.read", escrow, {"as": "provider"})
        return Response(escrow_body(escrow, self.actor, ProviderEscrowReadSerializer))


class IdFilterMixin(serializers.Serializer):
    escrow_id = serializers.RegexField(rf"^{ID_PATTERN}$", required=False)


class DisputeFilterSerializer(IdFilterMixin):
    status = serializers.ChoiceField(choices=DisputeStatus.choices, required=False)


class RefundFilterSerializer(IdFilterMixin):
    status = serializers.ChoiceField(choices=RefundStatus.choices, required=False)


class DisputeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    # The parties (client's sender key, provider key: their own escrows' disputes), support and admin.
    required_scopes = {
        "list": READERS | {Scope.PROVIDER},
        "retrieve": READERS | {Scope.PROVIDER},
        "messages": READERS | {Scope.PROVIDER},
        "withdraw": {Scope.SENDER, Scope.PROVIDER},
        "resolve": {Scope.SUPPORT, Scope.ADMIN},
    }
    idempotency_required_actions = frozenset({"resolve"})
    serializer_class = DisputeReadSerializer
    list_filter_serializer = DisputeFilterSerializer

    def scoped_queryset(self, actor):
        return selectors.dispute_list_for(actor)

    def _respond(self, dispute_id: int, code: int = status.HTTP_200_OK) -> Response:
        return Response(represent(DisputeReadSerializer, selectors.dispute_list_for(self.actor).get(pk=dispute_id)),
                        status=code)

    @extend_schema(request=DisputeMessageInputSerializer, responses={201: DisputeReadSerializer})
    @action(detail=True, methods=["post"])
    def messages(self, request, pk=None):
        data = self.validated(DisputeMessageInputSerializer)
        disputes.dispute_add_message(actor=self.actor, dispute_id=int(pk), body=data["body"])
        return self._respond(int(pk), status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: DisputeReadSerializer})
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        disputes.dispute_withdraw(actor=self.actor, dispute_id=int(pk))
        return self._respond(int(pk))

    @extend_schema(request=DisputeResolveSerializer, responses={200: DisputeReadSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        data = self.validated(DisputeResolveSerializer)
        disputes.dispute_resolve(actor=self.actor, dispute_id=int(pk), **data)
        return self._respond(int(pk))


class RefundViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    required_scopes = {"list": READERS, "retrieve": READERS}
    serializer_class = RefundReadSerializer
    list_filter_serializer = RefundFilterSerializer

    def scoped_queryset(self, actor):
        return selectors.refund_list_for(actor)
