"""What the events layer is told by the apps above it, from their ``AppConfig.ready()``.

- **Resources**: which Read serializer shows a model in an event's ``data``
  (the one the API answers with: same fields, same masking). The events layer
  cannot import the apps' ``api`` modules — they sit above it — so each app
  registers its own.
- **Listeners**: what else must happen, in the same transaction, when an
  event is recorded (``webhooks`` creates one delivery per subscribed
  endpoint). A listener that raises rolls the change back with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Model

from kobatela.events.models import Event


@dataclass(frozen=True)
class Resource:
    object_type: str
    serializer: type


_RESOURCES: dict[str, Resource] = {}
_LISTENERS: list[Callable[[Event], None]] = []


def register_resource(model: type[Model], *, object_type: str, serializer: type) -> None:
    _RESOURCES[model._meta.label_lower] = Resource(object_type, serializer)


def resource_for(model: type[Model]) -> Resource:
    try:
        return _RESOURCES[model._meta.label_lower]
    except KeyError:
        raise ValueError(
            f"No event serializer for {model._meta.label_lower}: register one with "
            "kobatela.events.registry.register_resource() in its app's ready()."
        ) from None


def add_listener(listener: Callable[[Event], None]) -> None:
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def listeners() -> tuple[Callable[[Event], None], ...]:
    return tuple(_LISTENERS)
