"""Webhooks over the API: inbound provider webhooks, and (at the end) the
outbound events API and integrators' webhook endpoints.

Inbound provider webhooks: verify the signature on the raw body, then hand over to ``webhooks.inbound``.

Answers (API.md, "Payments and PSP"). Signed ⇒ stored and 200, however
unusable the event: a provider retries anything else for days (Stripe: three),
and re-sending the same bytes cannot make them usable.

=====  ==========================================================================
200    ``{"received": true, "status": "processed"}``;
       ``"failed"`` with ``"error": <code>`` when the event looks like ours but
       cannot be applied — data failing the schema, no such escrow or payment,
       a business rule's refusal (stored FAILED, support reprocesses it);
       ``"ignored"`` (Stripe) when it is not ours — no Kobatela metadata, a type
       we do not act on (stored IGNORED);
       ``{"duplicate": true}`` for an event already processed or ignored
400    bad timestamp, missing headers; nothing we could store: malformed JSON,
       not an object, no usable event id; generic PSP only: no type or a type
       outside the contract (see ``webhooks.inbound.psp`` for why)
401    signature does not match
503    no secret configured (providers retry on 5xx, so nothing is lost)
=====  ==========================================================================
"""

from __future__ import annotations

import os

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from kobatela.accounts.openapi import ErrorSerializer
from kobatela.core.pagination import CursorPagination
from kobatela.core.scopes import Scope
from kobatela.core.viewsets import ApiView, ScopedViewSet
from kobatela.events.catalogue import EVENT_TYPES
from kobatela.events.selectors import event_list_for
from kobatela.events.services import event_payload
from webhooks import selectors, signing
from webhooks.inbound import decode, process, psp, schemas, stripe
from webhooks.models import InboundEvent, WebhookDelivery, WebhookEndpoint
from webhooks.outbound import delivery, endpoints

_RECEIPT = inline_serializer(
    "WebhookReceipt",
    {
        "received": serializers.BooleanField(required=False),
        "status": serializers.ChoiceField(choices=["processed", "failed", "ignored"], required=False),
        "error": serializers.CharField(required=False),
        "duplicate": serializers.BooleanField(required=False),
    },
)


class PspEventSerializer(serializers.Serializer):
    """The generic PSP's event body (the event id is the ``webhook-id`` header)."""

    type = serializers.ChoiceField(choices=sorted(schemas.ACTIONS), help_text="The event type.")
    data = PolymorphicProxySerializer(
        component_name="PspEventData", resource_type_field_name=None, many=False,
        serializers=[schemas.FundingSucceededData, schemas.PayoutSettledData, schemas.PayoutData],
        help_text="`funding.succeeded`: FundingSucceededData; `payout.settled`: PayoutSettledData; "
                  "the other payout types: PayoutData.")


class StripeObjectSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.ChoiceField(choices=sorted({object_type for _, object_type, _ in
                                                     stripe.STRIPE_EVENTS.values()}))
    metadata = serializers.DictField(child=serializers.CharField(), required=False,
                                     help_text="Kobatela's keys: `escrow_id`, `payment_id` or `refund_id`.")


class StripeEventSerializer(serializers.Serializer):
    """A Stripe event; the types Kobatela acts on are listed, any other is stored and ignored."""

    id = serializers.CharField(help_text="`evt_…`")
    type = serializers.CharField(help_text="Acted on: " + ", ".join(f"`{t}`" for t in stripe.STRIPE_EVENTS) + ".")
    data = inline_serializer("StripeEventData", {"object": StripeObjectSerializer()})


def _signature_headers(*names: str) -> list[OpenApiParameter]:
    return [OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.HEADER, required=True) for name in names]


# What the provider endpoints answer besides 200: 400 (no or malformed
# signature headers, a body with nothing to store), 401 (a signature or
# timestamp that does not verify), 503 (no secret configured, or an outage).
_PROVIDER_ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 503: ErrorSerializer}


class _ProviderWebhookView(ApiView):
    """Base of the provider endpoints.

    The signature IS the authentication: no API key is expected (the provider
    has none) and no scope applies, so every request is let through to
    :meth:`post`, whose first step is verifying the signature; nothing is read,
    stored or processed before it passes. (The project's default permission
    refuses views without ``required_scopes``, hence the explicit AllowAny.)
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    provider: str

    def handle_exception(self, exc):
        response = super().handle_exception(exc)  # re-raises a bug (→ handler500)
        process.WEBHOOKS.labels(self.provider, "rejected").inc()
        return response

    def respond(self, envelope: schemas.Envelope) -> Response:
        receipt = process.inbound_event_receive(envelope=envelope, headers=self.request.headers)
        return Response(receipt.response_body())


class PspWebhookView(_ProviderWebhookView):
    """The generic PSP (Standard Webhooks: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``)."""

    provider = InboundEvent.Provider.PSP
    # What can refuse the delivery (the schema's error codes); what processing
    # refuses is stored FAILED and answered 200, never an error status.
    error_sources = (signing.verify, decode.decode_body, psp.psp_envelope)

    @extend_schema(request=PspEventSerializer, responses={200: _RECEIPT, **_PROVIDER_ERRORS}, auth=[],
                   parameters=_signature_headers("webhook-id", "webhook-timestamp", "webhook-signature"))
    def post(self, request):
        # The exact bytes signed; request.data is never read.
        return Response(process.psp_webhook_receive(headers=request.headers, raw=request.body).response_body())


class StripeWebhookView(_ProviderWebhookView):
    """Stripe (``Stripe-Signature: t=…,v1=…``). Events that are not ours (a
    type we do not act on, no Kobatela metadata: the account may be shared
    with another product) are answered 200 ``ignored`` and stored, unlike the
    generic PSP's 400 for unknown types: Stripe sends many types to one
    endpoint and would retry a 4xx for days."""

    provider = InboundEvent.Provider.STRIPE
    error_sources = (signing.verify_stripe, decode.decode_body, stripe.stripe_envelope)

    @extend_schema(request=StripeEventSerializer, responses={200: _RECEIPT, **_PROVIDER_ERRORS}, auth=[],
                   parameters=_signature_headers("Stripe-Signature"))
    def post(self, request):
        raw = request.body
        signing.verify_stripe(
            header=request.headers.get("Stripe-Signature"),
            body=raw,
            secret=os.environ.get("STRIPE_WEBHOOK_SECRET"),
            tolerance_seconds=300,
        )
        return self.respond(stripe.stripe_envelope(body=decode.decode_body(raw)))


# --------------------------------------------------------------------------- #
# Outbound: the events API and integrators' webhook endpoints
# --------------------------------------------------------------------------- #

READERS = {Scope.SENDER, Scope.SUPPORT, Scope.ADMIN}
_EVENT_TYPE_CHOICES = sorted(EVENT_TYPES)


class EventReadSerializer(serializers.Serializer):
    """EventRead; also the body of every webhook (see ``kobatela.events.services.event_payload``)."""

    id = serializers.IntegerField(help_text="Also the `webhook-id` header of its deliveries.")
    type = serializers.CharField(help_text="e.g. `escrow.funded`; see docs/integrators.md for the list.")
    created_at = serializers.DateTimeField()
    account_id = serializers.IntegerField()
    object_type = serializers.CharField(help_text="`escrow`, `payment`, `proof` or `mandate`.")
    object_id = serializers.CharField()
    data = serializers.DictField(help_text="The object as its own GET endpoint showed it when the event happened.")
    context = serializers.DictField(help_text="What the object alone does not say, e.g. `milestone_id` and "
                                              "`milestone_idx` for milestone events.")

    def to_representation(self, instance):
        return event_payload(instance)


class EventFilterSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=_EVENT_TYPE_CHOICES, required=False)
    created_after = serializers.DateTimeField(required=False, source="created_at__gt")


class RedeliverSerializer(serializers.Serializer):
    endpoint_id = serializers.IntegerField(min_value=1, max_value=schemas.MAX_ID, required=False,
                                           help_text="Only this endpoint (else every endpoint subscribed to the type).")


class WebhookDeliveryReadSerializer(serializers.ModelSerializer):
    event_type = serializers.CharField(source="event.type", read_only=True)
    status = serializers.CharField(read_only=True, help_text="PENDING, SUCCEEDED or FAILED.")
    last_latency_ms = serializers.IntegerField(source="last_duration_ms", read_only=True, allow_null=True,
                                               help_text="Milliseconds from the start of the last attempt to "
                                                         "the endpoint's answer (or to the error).")

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_id", "event_type", "endpoint_id", "status", "attempt", "next_attempt_at",
                  "last_attempt_at", "last_status_code", "last_latency_ms", "last_error", "finished_at", "created_at",
                  "updated_at"]
        read_only_fields = fields


class DeliveryFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)


class RedeliveryResultSerializer(serializers.Serializer):
    event_id = serializers.IntegerField()
    deliveries = WebhookDeliveryReadSerializer(many=True)


@extend_schema_field({"type": "string", "maxLength": 2048, "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$"})
class WebhookUrlField(serializers.CharField):
    """Its schema says at a glance what ``webhooks.targets`` accepts; the rest
    (host, port, no credentials or fragment, public addresses) is checked there."""


class WebhookEndpointCreateSerializer(serializers.Serializer):
    url = WebhookUrlField(max_length=2048, help_text="https URL (http only where private targets are allowed); "
                                                     "must resolve to public addresses only.")
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=_EVENT_TYPE_CHOICES), required=False,
                                        default=list, max_length=len(EVENT_TYPES),
                                        help_text="Types to receive; empty or absent: every type.")
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")

    def validate_event_types(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))  # without duplicates, in the given order


class WebhookEndpointReadSerializer(serializers.ModelSerializer):
    """Never the secret: it is shown once, in the creation and rotation answers."""

    status = serializers.CharField(read_only=True, help_text="ENABLED or DISABLED (see disabled_reason).")
    event_types = serializers.ListField(child=serializers.CharField(), read_only=True,
                                        help_text="Subscribed types; empty: every type.")

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "event_types", "status", "disabled_reason", "disabled_at",
                  "failing_since", "last_success_at", "last_failure_at", "previous_secret_expires_at", "created_at",
                  "updated_at"]
        read_only_fields = fields


class WebhookEndpointSecretSerializer(WebhookEndpointReadSerializer):
    secret = serializers.CharField(read_only=True, help_text="`whsec_…`: shown this once only.")

    class Meta(WebhookEndpointReadSerializer.Meta):
        fields = [*WebhookEndpointReadSerializer.Meta.fields, "secret"]
        read_only_fields = fields


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> dict:
    return {**WebhookEndpointReadSerializer(endpoint).data, "secret": secret}


@extend_schema_view(list=extend_schema(parameters=[
    OpenApiParameter("type", OpenApiTypes.STR, enum=_EVENT_TYPE_CHOICES, description="Only this event type."),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME,
                     description="Only events created strictly after this ISO 8601 time (e.g. `2026-05-01T12:00:00Z`)."),
]))
class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """``GET /events`` (``?type=``, ``?created_after=``), ``GET /events/{id}``,
    ``POST /events/{id}/redeliver``. A sender sees its own account's events."""

    required_scopes = {"list": READERS, "retrieve": READERS, "redeliver": READERS}
    serializer_class = EventReadSerializer
    list_filter_serializer = EventFilterSerializer

    def scoped_queryset(self, actor):
        return event_list_for(actor)

    @extend_schema(request=RedeliverSerializer, responses={202: RedeliveryResultSerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        payload = self.validated(RedeliverSerializer)
        event = self.get_object()
        deliveries = delivery.event_redeliver(actor=self.actor, event=event,
                                              endpoint_id=payload.get("endpoint_id"))
        return Response({"event_id": event.pk, "deliveries": WebhookDeliveryReadSerializer(deliveries, many=True).data},
                        status=status.HTTP_202_ACCEPTED)


class WebhookEndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    required_scopes = {"list": READERS, "retrieve": READERS, "deliveries": READERS, "create": {Scope.SENDER},
                       "destroy": {Scope.SENDER}, "rotate_secret": {Scope.SENDER}, "enable": {Scope.SENDER}}
    serializer_class = WebhookEndpointReadSerializer

    def scoped_queryset(self, actor):
        return selectors.endpoint_list_for(actor)

    @extend_schema(request=WebhookEndpointCreateSerializer, responses={201: WebhookEndpointSecretSerializer})
    def create(self, request):
        data = self.validated(WebhookEndpointCreateSerializer)
        endpoint, secret = endpoints.endpoint_create(actor=self.actor, **data)
        return Response(_with_secret(endpoint, secret), status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        endpoints.endpoint_delete(actor=self.actor, endpoint_id=int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: WebhookEndpointSecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        endpoint, secret = endpoints.endpoint_rotate_secret(actor=self.actor, endpoint_id=int(pk))
        return Response(_with_secret(endpoint, secret))

    @extend_schema(request=None, responses={200: WebhookEndpointReadSerializer})
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        endpoint = endpoints.endpoint_enable(actor=self.actor, endpoint_id=int(pk))
        return Response(WebhookEndpointReadSerializer(endpoint).data)

    # The paginator adds ``cursor`` and ``limit`` to the list it answers.
    @extend_schema(parameters=[DeliveryFilterSerializer], responses={200: WebhookDeliveryReadSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        endpoint = self.get_object()
        paginator = CursorPagination()
        page = paginator.paginate_queryset(
            selectors.deliveries_of(endpoint).filter(**self.validated_query(DeliveryFilterSerializer)), request, view=self)
        return paginator.get_paginated_response(WebhookDeliveryReadSerializer(page, many=True).data)
