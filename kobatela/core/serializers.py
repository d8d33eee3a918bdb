"""One serializer instance per read serializer class, reused for every response.

DRF builds a serializer's fields for each instance: it deep-copies the
declared fields (nested serializers included), and a ``ModelSerializer`` also
introspects its model. For an escrow with its milestones that was about a
tenth of a deposit request's CPU. A read serializer's output depends only on
the object it is given: ours read nothing from ``self.context`` and keep no
state between calls. So the fields can be built once per class.

Use :func:`represent` only for serializers like that. A serializer that needs
the request, such as one with hyperlinked fields, must be instantiated per call.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from rest_framework import serializers


@cache
def _instance(serializer_class: type[serializers.BaseSerializer]) -> serializers.BaseSerializer:
    serializer = serializer_class()
    serializer.fields  # noqa: B018 (build and bind the fields now, once)
    return serializer


def represent(serializer_class: type[serializers.BaseSerializer], instance: Any) -> dict[str, Any]:
    """``serializer_class(instance).data``, with the fields built only once per class."""
    return _instance(serializer_class).to_representation(instance)


class StrictCharField(serializers.CharField):
    """A CharField that takes a JSON string only: DRF's would turn ``0`` or ``true``
    into ``"0"``/``"True"``, accepting a body the schema refuses."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)
