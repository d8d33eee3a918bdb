"""Locking one row the caller may touch: the shape every ``*_lock`` selector shares."""

from __future__ import annotations

from typing import TypeVar

from django.db import models

from kobatela.core.actor import Actor
from kobatela.core.errors import NotFound

M = TypeVar("M", bound=models.Model)


def lock_owned_row(queryset: models.QuerySet[M], pk: int, *, actor: Actor | None, owner_field: str,
                   missing: NotFound) -> M:
    """``SELECT … FOR UPDATE`` of row ``pk`` of ``queryset`` until the transaction ends.

    Given an actor that does not see every account, only a row whose
    ``owner_field`` is the actor's user is found; anything else — another
    tenant's row or no row at all — raises ``missing`` (a 404), so the two
    cannot be told apart. Without an actor (jobs, webhooks) no scope applies.
    """
    qs = queryset.select_for_update()
    if actor is not None and not actor.sees_all:
        qs = qs.filter(**{owner_field: actor.user_id})
    try:
        return qs.get(pk=pk)
    except queryset.model.DoesNotExist:
        raise missing from None
