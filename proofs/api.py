from __future__ import annotations

import json

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from escrow.models import ProofType
from kobatela.core.money import AmountField
from kobatela.core.parsers import DecimalJSONParser
from kobatela.core.scopes import Scope
from kobatela.core.viewsets import ID_PATTERN, ScopedViewSet
from proofs import selectors, services
from proofs.models import Proof, ProofStatus, RiskLevel


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


class ProofAiSerializer(serializers.Serializer):
    status = serializers.CharField()
    risk_level = serializers.CharField(allow_null=True)
    score = serializers.DecimalField(max_digits=4, decimal_places=3, allow_null=True)
    flags = serializers.ListField(child=serializers.CharField())
    explanation = serializers.CharField(allow_null=True)
    checked_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class ProofReadSerializer(serializers.ModelSerializer):
    """ProofRead (API.md). Never the raw OCR text, a full IBAN or the AI prompt."""

    milestone_id = serializers.IntegerField(read_only=True)
    escrow_id = serializers.IntegerField(read_only=True)
    exif = serializers.SerializerMethodField()
    invoice = serializers.SerializerMethodField()
    ai = serializers.SerializerMethodField()
    decided_by = serializers.CharField(source="decided_by_label", read_only=True, allow_null=True)

    class Meta:
        model = Proof
        fields = ["id", "escrow_id", "milestone_id", "type", "status", "sha256", "size", "content_type", "validation",
                  "exif", "invoice", "backend_checks", "ocr_status", "ai", "decided_by", "decided_at",
                  "decision_note", "created_at"]
        read_only_fields = fields

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


class ProofViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    required_scopes = {"list": READERS, "retrieve": READERS, "file": READERS, "create": {Scope.SENDER},
                       "decision": {Scope.SUPPORT, Scope.ADMIN}}
    serializer_class = ProofReadSerializer
    parser_classes = [MultiPartParser, DecimalJSONParser]  # uploads are multipart, decisions JSON
    list_filter_serializer = ProofFilterSerializer

    def scoped_queryset(self, actor):
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
        response = FileResponse(default_storage.open(proof.file.name, "rb"), content_type=proof.content_type,
                                as_attachment=True, filename=f"proof-{proof.pk}{services.EXTENSIONS[proof.content_type]}")
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        return response

    @extend_schema(request=DecisionSerializer, responses={200: ProofReadSerializer})
    @action(detail=True, methods=["post"])
    def decision(self, request, pk=None):
        payload = self.validated(DecisionSerializer)
        proof = services.proof_decide(actor=self.actor, proof_id=self.get_object().pk, **payload)
        return Response(ProofReadSerializer(proof).data)
