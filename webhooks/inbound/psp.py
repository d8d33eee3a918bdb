"""The generic PSP's events (Standard Webhooks)."""

from __future__ import annotations

from typing import Any

from kobatela.core.errors import BadRequest
from webhooks.inbound.schemas import ACTIONS, MAX_EVENT_TYPE, ParsedEvent, check_event_id, validate
from webhooks.models import InboundEvent


def parse_psp_event(*, event_id: str, body: dict[str, Any]) -> ParsedEvent:
    """The generic PSP: ``{"type": ..., "data": {...}}``; the id is the ``webhook-id`` header.

    Unknown types are refused (400, not stored): the generic PSP sends only the
    types of the contract, so another one is a misconfiguration to see at once.
    """
    event_id = check_event_id(event_id)
    event_type, data = body.get("type"), body.get("data")
    if not isinstance(event_type, str) or not isinstance(data, dict):
        raise BadRequest("invalid_event", 'The event must have a string "type" and an object "data".')
    if event_type not in ACTIONS:
        raise BadRequest("unknown_event_type", "This event type is not handled.",
                         details={"type": event_type[:MAX_EVENT_TYPE], "handled": sorted(ACTIONS)})
    return ParsedEvent(provider=InboundEvent.Provider.PSP, event_id=event_id, event_type=event_type,
                       action=event_type, data=validate(event_type, data), body=body)
