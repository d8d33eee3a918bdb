"""The one state-machine step every model with a ``status`` takes.

A model declares ``ALLOWED_TRANSITIONS`` (status → the statuses it may
become) and, when its API name differs from its model name, ``STATE_NOUN``
("escrow" for ``EscrowAgreement``). A service calls :func:`transition` on
the locked row before saving it.
"""

from __future__ import annotations

from django.db import models

from kobatela.core.errors import Conflict


def transition(obj: models.Model, to: str) -> None:
    """Set ``obj.status = to`` or refuse with 409 ``<noun>_is_<status>``, naming the current state."""
    if to not in obj.ALLOWED_TRANSITIONS[obj.status]:
        noun = getattr(obj, "STATE_NOUN", obj._meta.model_name)
        raise Conflict(
            f"{noun}_is_{obj.status.lower()}",
            f"The {noun} is {obj.status}; it cannot become {to}.",
            details={"status": obj.status, "wanted": to},
        )
    obj.status = to
