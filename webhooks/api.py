"""Inbound provider webhooks: verify the signature on the raw body, then hand over to services.

Answers (API.md, "Payments and PSP"):

=====  ==========================================================================
200    ``{"received": true, "status": "processed"}``; ``"failed"`` with ``"error":
       <code>`` when a business rule refused the event (stored FAILED, support
       reprocesses it: the provider must not retry a permanent failure);
       Stripe only: ``"ignored"`` for a type we do not act on;
       ``{"duplicate": true}`` for an event already processed
400    bad timestamp, missing headers, malformed JSON, invalid event or data,
       unknown type (generic PSP only)
401    signature does not match
503    no secret configured (providers retry on 5xx, so nothing is lost)
=====  ==========================================================================
"""

from __future__ import annotations

import os

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from kobatela.core.viewsets import ApiView
from webhooks import services, signing
from webhooks.models import InboundEvent

_RECEIPT = inline_serializer(
    "WebhookReceipt",
    {
        "received": serializers.BooleanField(required=False),
        "status": serializers.ChoiceField(choices=["processed", "failed", "ignored"], required=False),
        "error": serializers.CharField(required=False),
        "duplicate": serializers.BooleanField(required=False),
    },
)


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
        services.WEBHOOKS.labels(self.provider, "rejected").inc()
        return response

    def respond(self, parsed: services.ParsedEvent) -> Response:
        receipt = services.inbound_event_receive(parsed=parsed, headers=self.request.headers)
        return Response(receipt.response_body())


class PspWebhookView(_ProviderWebhookView):
    """The generic PSP (Standard Webhooks: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``)."""

    provider = InboundEvent.Provider.PSP

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: _RECEIPT}, auth=[])
    def post(self, request):
        raw = request.body  # the exact bytes signed; request.data is never read
        msg_id = signing.verify(
            headers=request.headers,
            body=raw,
            # Read on every request: a secret is rotated by changing the environment, without a restart.
            secrets=[os.environ.get("PSP_WEBHOOK_SECRET"), os.environ.get("PSP_WEBHOOK_SECRET_NEXT")],
            tolerance_seconds=settings.PSP_WEBHOOK_TOLERANCE_SECONDS,
        )
        return self.respond(services.parse_psp_event(event_id=msg_id, body=services.decode_body(raw)))


class StripeWebhookView(_ProviderWebhookView):
    """Stripe (``Stripe-Signature: t=…,v1=…``). Types we do not act on are
    answered 200 ``ignored`` and stored, unlike the generic PSP's 400: Stripe
    sends many types to one endpoint and would retry a 4xx for days."""

    provider = InboundEvent.Provider.STRIPE

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: _RECEIPT}, auth=[])
    def post(self, request):
        raw = request.body
        signing.verify_stripe(
            header=request.headers.get("Stripe-Signature"),
            body=raw,
            secret=os.environ.get("STRIPE_WEBHOOK_SECRET"),
            tolerance_seconds=300,
        )
        return self.respond(services.parse_stripe_event(body=services.decode_body(raw)))
