"""``/sandbox/…``: the sandbox PSP's helpers and the test clock (API.md "Sandbox").

Routed always, answered only with ``PSP_PROVIDER=sandbox``: anywhere else every
one of them is a 404, exactly like a path that does not exist."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from kobatela.core.errors import Conflict, NotFound
from kobatela.core.scopes import Scope
from kobatela.core.viewsets import ApiView
from webhooks import sandbox


class SandboxDeliverySerializer(serializers.Serializer):
    webhook_id = serializers.CharField(help_text="The `webhook-id` of the signed event the sandbox PSP sent.")
    type = serializers.ChoiceField(choices=["payout.settled", "payout.failed", "funding.succeeded"])
    received = serializers.BooleanField(required=False)
    status = serializers.ChoiceField(choices=["processed", "failed", "ignored"], required=False,
                                     help_text="What the inbound path did with it (as `/psp/webhook` answers).")
    error = serializers.CharField(required=False, help_text="The code of the refusal, when `status` is `failed`.")
    duplicate = serializers.BooleanField(required=False)


class SandboxFailSerializer(serializers.Serializer):
    failure_code = serializers.RegexField(r"^[a-z0-9_]{1,64}$", required=False,
                                          help_text="The PSP's failure code (default `sandbox_declined`).")


class ClockAdvanceSerializer(serializers.Serializer):
    hours = serializers.IntegerField(min_value=1, max_value=24 * 365 * 5)


class ClockAdvancedSerializer(serializers.Serializer):
    now = serializers.DateTimeField(help_text="The platform's time after the move.")
    offset_hours = serializers.FloatField(help_text="How far the test clock is ahead of real time.")
    jobs = serializers.DictField(child=serializers.IntegerField(),
                                 help_text="Each job that ran, with how many things it handled.")


OWNERS = {Scope.SENDER, Scope.ADMIN}
SANDBOX_NOTE = " Only with `PSP_PROVIDER=sandbox`; 404 anywhere else."


class SandboxView(ApiView):
    """Outside the sandbox, a 404 before anything else (authentication included)."""

    def initial(self, request, *args, **kwargs):
        if not sandbox.sandbox_enabled():
            raise NotFound()
        super().initial(request, *args, **kwargs)


class SandboxPaymentSettleView(SandboxView):
    required_scopes = OWNERS
    raises = (NotFound("payment_not_found"), Conflict("payment_not_sent"))

    @extend_schema(summary="Settle a sandbox payout",
                   description="The sandbox PSP sends its signed `payout.settled` webhook for this SENT payout, "
                               "through the normal inbound path." + SANDBOX_NOTE,
                   request=None, responses={202: SandboxDeliverySerializer}, tags=["sandbox"])
    def post(self, request, id: int):
        return Response(sandbox.sandbox_payment_settle(actor=self.actor, payment_id=int(id)),
                        status=status.HTTP_202_ACCEPTED)


class SandboxPaymentFailView(SandboxView):
    required_scopes = OWNERS
    raises = (NotFound("payment_not_found"), Conflict("payment_not_sent"))

    @extend_schema(summary="Fail a sandbox payout",
                   description="The sandbox PSP sends its signed `payout.failed` webhook for this SENT payout."
                               + SANDBOX_NOTE,
                   request=SandboxFailSerializer, responses={202: SandboxDeliverySerializer}, tags=["sandbox"])
    def post(self, request, id: int):
        data = self.validated(SandboxFailSerializer)
        return Response(sandbox.sandbox_payment_fail(actor=self.actor, payment_id=int(id),
                                                     failure_code=data.get("failure_code", "")),
                        status=status.HTTP_202_ACCEPTED)


class SandboxEscrowFundView(SandboxView):
    required_scopes = OWNERS
    raises = (NotFound("escrow_not_found"), Conflict("escrow_not_fundable"))

    @extend_schema(summary="Fund a sandbox escrow",
                   description="The sandbox PSP sends its signed `funding.succeeded` webhook for what remains to "
                               "fund; the escrow becomes FUNDED." + SANDBOX_NOTE,
                   request=None, responses={202: SandboxDeliverySerializer}, tags=["sandbox"],
                   examples=[OpenApiExample("Funded", response_only=True, status_codes=["202"], value={
                       "webhook_id": "sbx_evt_4f1c…", "type": "funding.succeeded", "received": True,
                       "status": "processed"})])
    def post(self, request, id: int):
        return Response(sandbox.sandbox_escrow_fund(actor=self.actor, escrow_id=int(id)),
                        status=status.HTTP_202_ACCEPTED)


class SandboxClockAdvanceView(SandboxView):
    required_scopes = {Scope.ADMIN}

    @extend_schema(summary="Advance the test clock",
                   description="Moves the platform's test clock `hours` forward (every process sees it) and runs "
                               "the due deadline, mandate-expiry and payout-sweep jobs at the new time."
                               + SANDBOX_NOTE,
                   request=ClockAdvanceSerializer, responses={200: ClockAdvancedSerializer}, tags=["sandbox"])
    def post(self, request):
        data = self.validated(ClockAdvanceSerializer)
        return Response(ClockAdvancedSerializer(sandbox.sandbox_clock_advance(hours=data["hours"])).data)
