"""What each action needs, whichever provider reports it, and the parsed event both parsers produce."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rest_framework import serializers

from kobatela.core.errors import BadRequest, ValidationFailed
from kobatela.core.money import AmountField, CurrencyField

# Same bound as ids in URLs (kobatela.core.viewsets.ID_PATTERN): an absurd id is
# refused as input, never a database overflow.
MAX_ID = 10**18 - 1
# The deposit's idempotency key is "psp:<psp_ref>" in a 255-character column.
MAX_PSP_REF = 250
MAX_EVENT_ID = 255  # InboundEvent.event_id
MAX_EVENT_TYPE = 100  # InboundEvent.event_type


def _id_field(**kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


class FundingSucceededData(serializers.Serializer):
    psp_ref = serializers.CharField(max_length=MAX_PSP_REF)
    escrow_id = _id_field()
    amount = AmountField()
    currency = CurrencyField()
    # When the PSP names the funding session the money came through (Stripe: the
    # PaymentIntent is the session), it must be one Kobatela opened for this
    # escrow; without it (the generic PSP's contract) the escrow id alone counts.
    session_id = serializers.CharField(max_length=MAX_PSP_REF, required=False)


class _OutcomeData(serializers.Serializer):
    """What the PSP may say of a payout's or a refund's outcome, besides whose it is."""

    psp_ref = serializers.CharField(max_length=MAX_PSP_REF, required=False, allow_blank=True, default="")
    amount = AmountField(required=False)
    currency = CurrencyField(required=False)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    failure_code = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class PayoutData(_OutcomeData):
    """payout.sent / payout.failed: amount and currency are optional (not checked)."""

    payment_id = _id_field()


class PayoutSettledData(PayoutData):
    """The money has left: the PSP's amount and currency must be the payment's."""

    amount = AmountField()
    currency = CurrencyField()


# payout.refunded: amount/currency optional; when given they must be the payment's.
PayoutRefundedData = PayoutData


class AccountVerifiedData(serializers.Serializer):
    """account.verified: the PSP verified a payee. ``account`` is the payee's reference at
    the PSP (the account's ``payout_account``, or ``user:<id>`` for the sandbox)."""

    account = serializers.CharField(max_length=255)


class RefundData(_OutcomeData):
    """refund.settled / refund.failed: amount and currency, when given, must be the refund's."""

    refund_id = _id_field()


# The actions we take, named as the generic PSP names its event types (Stripe's
# are translated to these), each with the schema of its data.
ACTIONS: dict[str, type[serializers.Serializer]] = {
    "funding.succeeded": FundingSucceededData,
    "payout.sent": PayoutData,
    "payout.settled": PayoutSettledData,
    "payout.failed": PayoutData,
    "payout.refunded": PayoutRefundedData,
    "account.verified": AccountVerifiedData,
    "payout.returned": PayoutData,
    "refund.settled": RefundData,
    "refund.failed": RefundData,
}


def validate(action: str, data: Any) -> dict[str, Any]:
    """The action's data, or ``invalid_event_data`` with the fields at fault."""
    if not isinstance(data, dict):
        raise ValidationFailed("invalid_event_data", "The event data has invalid fields.",
                               details={"data": ["A JSON object is required."]})
    serializer = ACTIONS[action](data=data)
    if not serializer.is_valid():
        details = {key: [str(m) for m in value] if isinstance(value, list) else value
                   for key, value in serializer.errors.items()}
        raise ValidationFailed("invalid_event_data", "The event data has invalid fields.", details=details)
    return dict(serializer.validated_data)


@dataclass(frozen=True)
class Envelope:
    """What a verified delivery is stored as: enough to find it again (unique
    provider and event id) and to parse it later, however unusable its data."""

    provider: str
    event_id: str
    event_type: str  # as the provider names it, cut to the column
    body: dict[str, Any]  # as stored; what every (re)processing parses


@dataclass(frozen=True)
class ParsedEvent:
    """A stored event we act on: the action (key of ACTIONS) and its data, validated by the action's schema."""

    action: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Ignored:
    """Why a signed event is not ours to act on: stored IGNORED, answered 200, no alert."""

    code: str
    message: str


def check_event_id(event_id: Any) -> str:
    """The provider's event id, the one thing a delivery cannot be stored without (else 400)."""
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > MAX_EVENT_ID:
        raise BadRequest("invalid_event", f"The event id must be a string of 1 to {MAX_EVENT_ID} characters.")
    return event_id
