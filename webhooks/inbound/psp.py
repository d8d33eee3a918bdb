"""The generic PSP's events (Standard Webhooks): ``{"type": ..., "data": {...}}``, the id in the ``webhook-id`` header.

Signed ⇒ 200 and stored, as for Stripe, once the type is one of the contract:
data failing the type's schema is stored FAILED (``invalid_event_data``, with
the fields at fault) and raises an alert, because the PSP re-sending the same
bytes would fail the same way for days.

Unknown types, and a body without a string type, are still refused (400, not
stored), on purpose, unlike Stripe's:

* the endpoint and its secret belong to this integration alone (no other
  product shares them), so an event here is always meant for Kobatela and
  there is no "not ours" to set aside quietly;
* the types are our own contract (API.md), so another one is a PSP released
  ahead of us or a misconfiguration — to see at once, which a 400 in the
  PSP's dashboard does;
* a 4xx makes the PSP retry, so an event of a type added to the contract
  (``payout.returned``, ``refund.*``…) is delivered again once a release
  handles it, where a 200 would have ended its retries and lost it.
"""

from __future__ import annotations

from typing import Any

from kobatela.core.errors import BadRequest
from webhooks.inbound.schemas import ACTIONS, MAX_EVENT_TYPE, Envelope, ParsedEvent, check_event_id, validate
from webhooks.models import InboundEvent


def _contract_type(body: dict[str, Any]) -> str:
    event_type = body.get("type")
    if not isinstance(event_type, str):
        raise BadRequest("invalid_event", 'The event must have a string "type".')
    if event_type not in ACTIONS:
        raise BadRequest("unknown_event_type", "This event type is not handled.",
                         details={"type": event_type[:MAX_EVENT_TYPE], "handled": sorted(ACTIONS)})
    return event_type


def psp_envelope(*, event_id: str, body: dict[str, Any]) -> Envelope:
    """What is stored: refused (400) only without a usable id or a type of the contract."""
    return Envelope(provider=InboundEvent.Provider.PSP, event_id=check_event_id(event_id),
                    event_type=_contract_type(body), body=body)


def parse_psp_event(*, body: dict[str, Any]) -> ParsedEvent:
    """A stored event's action and data; ``invalid_event_data`` (a DomainError) when the data fails the schema."""
    event_type = _contract_type(body)  # a stored type no longer handled (a release removed it) fails here
    return ParsedEvent(action=event_type, data=validate(event_type, body.get("data")))
