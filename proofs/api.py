from __future__ import annotations

import json

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from escrow.models import ProofType
from escrow.rules import ACTIONS
from escrow.selectors import escrow_list_for
from kobatela.audit.reads import AuditedReadsMixin, record_read
from kobatela.core import clock
from kobatela.core.errors import NotFound
from kobatela.core.money import AmountField
from kobatela.core.pagination import CursorPagination
from kobatela.core.parsers import DecimalJSONParser
from kobatela.core.scopes import Scope
from kobatela.core.viewsets import ID_PATTERN, ApiView, ScopedViewSet
from payments.models import Payment
from proofs import file_urls, selectors, services, upload_links
from proofs.models import Proof, ProofStatus, RiskLevel, UploadLink, UploadLinkStatus


# A multipart part holding an object is JSON text (OpenAPI's default encoding for objects).
@extend_schema_field({"type": "object", "additionalProperties": {}})
class JsonObjectTextField(serializers.Field):
    """A JSON object sent as the text of a form field, of at most ``max_length`` characters."""

    default_error_messages = {"invalid": "Must be a JSON object.",
                              "max_length": "Ensure this field has no more than {max_length} characters."}

    def __init__(self, *, max_length: int, **kwargs) -> None:
        self.max_length = max_length
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        try:
            parsed = json.loads(data)
        except ValueError:
            self.fail("invalid")
        if not isinstance(parsed, dict):
            self.fail("invalid")
        return parsed

    def to_representation(self, value):
        return value


class ProofUploadSerializer(serializers.Serializer):
    escrow_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    milestone_idx = serializers.IntegerField(min_value=1, max_value=32767)
    type = serializers.ChoiceField(choices=ProofType.choices)
    file = serializers.FileField(allow_empty_file=False)
    metadata = JsonObjectTextField(required=False, max_length=10_000, help_text="A JSON object (informative only).")


class ProofExifSerializer(serializers.Serializer):
    captured_at = serializers.DateTimeField(allow_null=True)
    lat = serializers.DecimalField(max_digits=9, decimal_places=6, allow_null=True)
    lng = serializers.DecimalField(max_digits=9, decimal_places=6, allow_null=True)
    distance_m = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)


class ProofInvoiceSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    currency = serializers.CharField(allow_null=True)
    date = serializers.DateField(allow_null=True)
    number = serializers.CharField(allow_null=True)
    supplier = serializers.CharField(allow_null=True)
    iban_last4 = serializers.CharField(allow_null=True)
    currency_evidence = serializers.CharField(
        allow_null=True, required=False,
        help_text="What decided the currency: written:<token> (written:€, written:FC) or, for a CFA franc, "
                  "iso_code:XOF, iban:SN, central_bank:BEAC, phone:+237, country:CM, milestone:XAF.",
    )


class ProofAiSerializer(serializers.Serializer):
    status = serializers.CharField()
    risk_level = serializers.CharField(allow_null=True)
    score = serializers.DecimalField(max_digits=4, decimal_places=3, allow_null=True)
    flags = serializers.ListField(child=serializers.CharField())
    explanation = serializers.CharField(allow_null=True)
    checked_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_null=True)


_FINDING = {"type": "object", "additionalProperties": True,
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}


@extend_schema_field({"type": "object", "additionalProperties": True, "properties": {
    "errors": {"type": "array", "items": _FINDING}, "warnings": {"type": "array", "items": _FINDING}}})
class ValidationReportField(serializers.JSONField):
    """``{errors: [{code, message, …}], warnings: [...]}``: what the checks found."""


@extend_schema_field({"type": "object", "additionalProperties": True,
                      "description": "The document checks' results, by check name."})
class BackendChecksField(serializers.JSONField):
    pass


class ProofReviewSerializer(serializers.Serializer):
    priority = serializers.IntegerField(help_text="The review queue's order, highest first (proofs.review_priority).")
    flags = serializers.ListField(child=serializers.CharField(),
                                 help_text="Why a decision needs a note: failed checks, photo warnings, re-use, AI.")
    note_required = serializers.BooleanField()


class ProofReadSerializer(serializers.ModelSerializer):
    """ProofRead (API.md). Never the raw OCR text, a full IBAN or the AI prompt."""

    milestone_id = serializers.IntegerField(read_only=True)
    escrow_id = serializers.IntegerField(read_only=True)
    exif = serializers.SerializerMethodField()
    invoice = serializers.SerializerMethodField()
    ai = serializers.SerializerMethodField()
    review = serializers.SerializerMethodField()
    decided_by = serializers.CharField(source="decided_by_label", read_only=True, allow_null=True)
    validation = ValidationReportField(read_only=True)
    backend_checks = BackendChecksField(read_only=True)
    payment_id = serializers.SerializerMethodField(
        help_text="The payout this proof's approval created (its milestone's latest), else null.")

    class Meta:
        model = Proof
        fields = ["id", "escrow_id", "milestone_id", "type", "status", "sha256", "size", "content_type", "validation",
                  "exif", "invoice", "backend_checks", "ocr_status", "ai", "review", "decided_by", "decided_at",
                  "decision_note", "payment_id", "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_payment_id(self, proof: Proof) -> int | None:
        if proof.status != ProofStatus.APPROVED:
            return None
        if hasattr(proof, "latest_payment_id"):  # read in the list's query (selectors.with_latest_payment_id)
            return proof.latest_payment_id
        payouts = Payment.objects.filter(milestone_id=proof.milestone_id).order_by("-pk")
        return payouts.values_list("pk", flat=True).first()

    @extend_schema_field(ProofReviewSerializer)
    def get_review(self, proof: Proof):
        reasons = proof.note_reasons
        return {"priority": proof.review_priority, "flags": reasons,
                "note_required": bool(reasons) and proof.status == ProofStatus.PENDING}

    @extend_schema_field(ProofExifSerializer(allow_null=True))
    def get_exif(self, proof: Proof):
        if proof.type != ProofType.PHOTO:
            return None
        return ProofExifSerializer({"captured_at": proof.exif_captured_at, "lat": proof.exif_lat, "lng": proof.exif_lng,
                                    "distance_m": proof.distance_m}).data

    @extend_schema_field(ProofInvoiceSerializer(allow_null=True))
    def get_invoice(self, proof: Proof):
        if proof.type == ProofType.PHOTO or proof.ocr_status != "DONE":
            return None
        return ProofInvoiceSerializer({
            "amount": proof.invoice_amount, "currency": proof.invoice_currency or None, "date": proof.invoice_date,
            "number": proof.invoice_number or None, "supplier": proof.invoice_supplier or None,
            "iban_last4": proof.invoice_iban_last4 or None,
            "currency_evidence": ((proof.backend_checks or {}).get("checks", {}).get("currency") or {}).get("evidence"),
        }).data

    @extend_schema_field(ProofAiSerializer(allow_null=True))
    def get_ai(self, proof: Proof):
        if proof.ai_status == "NOT_APPLICABLE":
            return None
        return ProofAiSerializer({
            "status": proof.ai_status, "risk_level": proof.ai_risk_level or None, "score": proof.ai_score,
            "flags": proof.ai_flags or [], "explanation": proof.ai_explanation or None,
            "checked_at": proof.ai_checked_at, "error": proof.ai_error or None,
        }).data


class ProofFilterSerializer(serializers.Serializer):
    escrow_id = serializers.RegexField(rf"^{ID_PATTERN}$", required=False)
    status = serializers.ChoiceField(choices=ProofStatus.choices, required=False)
    ai_risk_level = serializers.ChoiceField(choices=RiskLevel.choices, required=False)


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    # A partial approval: pay this much (below the milestone's amount; a note is required).
    amount = AmountField(required=False)


READERS = {Scope.SENDER, Scope.SUPPORT, Scope.ADMIN}
REVIEW_ORDER = ("-review_priority", "created_at", "id")


class SignedUrlSerializer(serializers.Serializer):
    url = serializers.CharField()
    expires_at = serializers.DateTimeField()




class ProofPagination(CursorPagination):
    """``?order=review``: the review queue's order (highest review priority,
    then oldest), the same as the admin queue's; newest first otherwise."""

    def get_ordering(self, request, queryset, view):
        order = request.query_params.get("order")
        if order is None:
            return self.ordering
        if order != "review":
            raise ValidationError({"order": ["Only `review` is accepted."]})
        return REVIEW_ORDER

    def get_schema_operation_parameters(self, view):
        return [*super().get_schema_operation_parameters(view), {
            "name": "order", "required": False, "in": "query", "schema": {"type": "string", "enum": ["review"]},
            "description": "`review`: highest review priority first, then oldest (the review queue)."}]


class ProofViewSet(AuditedReadsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    required_scopes = {"list": READERS, "retrieve": READERS, "file": READERS,
                       "file_url": READERS | {Scope.PROVIDER}, "create": ACTIONS["submit_proof"].scopes,
                       "decision": {Scope.SUPPORT, Scope.ADMIN}}
    serializer_class = ProofReadSerializer
    parser_classes = [MultiPartParser, DecimalJSONParser]  # uploads are multipart, decisions JSON
    list_filter_serializer = ProofFilterSerializer
    # Where the escrow's provider may reach a proof too (the others read the client's own).
    party_actions = frozenset({"file_url"})
    pagination_class = ProofPagination
    audit_name = "proof"

    def scoped_queryset(self, actor):
        if getattr(self, "action", None) in self.party_actions:
            return selectors.proof_list_for_party(actor)
        return selectors.proof_list_for(actor)


    @extend_schema(request={"multipart/form-data": ProofUploadSerializer}, responses={201: ProofReadSerializer})
    def create(self, request):
        data = self.validated(ProofUploadSerializer)
        proof = services.proof_submit(actor=self.actor, escrow_id=data["escrow_id"], milestone_idx=data["milestone_idx"],
                                      proof_type=data["type"], upload=data["file"], metadata=data.get("metadata"))
        return Response(ProofReadSerializer(proof).data, status=status.HTTP_201_CREATED)

    # The stored file, with the content type found when it was uploaded.
    @extend_schema(responses={(200, content_type): OpenApiTypes.BINARY for content_type in services.EXTENSIONS})
    @action(detail=True, methods=["get"])
    def file(self, request, pk=None):
        proof = self.get_object()
        record_read(self.actor, "proof.file_read", proof, {"sha256": proof.sha256})
        response = file_urls.proof_file_response(proof, as_attachment=True)
        response["Cache-Control"] = "private, no-store"
        return response

    @extend_schema(responses={200: SignedUrlSerializer})
    @action(detail=True, methods=["get"], url_path="file-url")
    def file_url(self, request, pk=None):
        """A URL to the proof's file, valid for at most 15 minutes (presigned on S3, signed locally)."""
        signed = file_urls.proof_file_url(proof=self.get_object(), absolute=request.build_absolute_uri)
        return Response(SignedUrlSerializer(signed).data)

    @extend_schema(request=DecisionSerializer, responses={200: ProofReadSerializer}, examples=[
        OpenApiExample("Approve an invoice", request_only=True,
                       value={"decision": "approve", "note": "Matches the order."}),
        OpenApiExample("Reject a blurry photo", request_only=True,
                       value={"decision": "reject", "note": "The site is not visible; send another photo."})])
    @action(detail=True, methods=["post"], parser_classes=[DecimalJSONParser])  # JSON only (API.md)
    def decision(self, request, pk=None):
        payload = self.validated(DecisionSerializer)
        proof = services.proof_decide(actor=self.actor, proof_id=self.get_object().pk, **payload)
        return Response(ProofReadSerializer(proof).data)


# --- upload links --------------------------------------------------------------------


class UploadLinkCreateSerializer(serializers.Serializer):
    milestone_idx = serializers.IntegerField(min_value=1, max_value=32767)
    expires_in_hours = serializers.IntegerField(min_value=1, max_value=720)
    max_uploads = serializers.IntegerField(min_value=1, max_value=20)


class UploadLinkReadSerializer(serializers.ModelSerializer):
    """An upload link, never its token (only its hash is kept)."""

    escrow_id = serializers.IntegerField(read_only=True)
    milestone_idx = serializers.IntegerField(source="milestone.idx", read_only=True)
    status = serializers.SerializerMethodField()

    class Meta:
        model = UploadLink
        fields = ["id", "escrow_id", "milestone_idx", "expires_at", "max_uploads", "uploads_used", "status",
                  "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=UploadLinkStatus.choices))
    def get_status(self, link: UploadLink) -> str:
        return link.status_at(clock.now())


class UploadLinkCreatedSerializer(UploadLinkReadSerializer):
    url = serializers.CharField(read_only=True, help_text="The page the provider opens: /api/v1/u/{token}.")
    token = serializers.CharField(read_only=True, help_text="Shown this once only.")

    class Meta(UploadLinkReadSerializer.Meta):
        fields = ["id", "escrow_id", "milestone_idx", "url", "token", "expires_at", "max_uploads", "uploads_used",
                  "status", "created_at"]
        read_only_fields = fields


LINK_MANAGERS = ACTIONS["create_upload_link"].scopes


class EscrowUploadLinksView(ApiView):
    """``/escrows/{id}/upload-links``: create one (the token is shown once) or list them (no tokens)."""

    required_scopes = LINK_MANAGERS
    parser_classes = [DecimalJSONParser]

    def _escrow_id(self, escrow_id: str) -> int:
        escrow = escrow_list_for(self.actor).filter(pk=escrow_id).values_list("pk", flat=True).first()
        if escrow is None:
            raise NotFound("escrow_not_found", "No such escrow.")
        return escrow

    @extend_schema(request=UploadLinkCreateSerializer, responses={201: UploadLinkCreatedSerializer})
    def post(self, request, escrow_id: str):
        data = self.validated(UploadLinkCreateSerializer)
        link, token = upload_links.upload_link_create(actor=self.actor, escrow_id=int(escrow_id), **data)
        link.token = token
        link.url = request.build_absolute_uri(reverse("upload-page", kwargs={"token": token}))
        return Response(UploadLinkCreatedSerializer(link).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: UploadLinkReadSerializer(many=True)})
    def get(self, request, escrow_id: str):
        links = selectors.upload_link_list_for(self.actor).filter(escrow_id=self._escrow_id(escrow_id))
        paginator = CursorPagination()
        page = paginator.paginate_queryset(links, request, view=self)
        return paginator.get_paginated_response(UploadLinkReadSerializer(page, many=True).data)


class UploadLinkViewSet(ScopedViewSet):
    """``DELETE /upload-links/{id}``: revoke a link; it answers 410 from then on."""

    required_scopes = {"destroy": LINK_MANAGERS}
    serializer_class = UploadLinkReadSerializer

    def scoped_queryset(self, actor):
        return selectors.upload_link_list_for(actor)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        upload_links.upload_link_revoke(actor=self.actor, link_id=self.get_object().pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
