"""Reads leave a trace: ``AuditedReadsMixin`` for a ScopedViewSet's detail and list.

``GET /{things}/{id}`` writes ``<name>.read`` on the row, ``GET /{things}``
writes one ``<name>.listed`` row naming the ids on the page and the filters
asked for (entity ``(<label>, "list")``). Both after the tenant scoping, so a
404 writes nothing. Written with ``services.record`` like every audit row.
"""

from __future__ import annotations

from rest_framework.response import Response

from kobatela.audit import services as audit

__all__ = ["AuditedReadsMixin", "record_read"]


def record_read(actor, action: str, entity, data: dict | None = None) -> None:
    audit.record(actor, action, entity, data or {})


class AuditedReadsMixin:
    """Mix before ``mixins.ListModelMixin``/``RetrieveModelMixin``; set ``audit_name`` (e.g. "proof")."""

    audit_name = ""

    def retrieve(self, request, *args, **kwargs):
        instance = self.get_object()
        record_read(self.actor, f"{self.audit_name}.read", instance)
        return Response(self.get_serializer(instance).data)

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        rows = response.data.get("results", response.data) if isinstance(response.data, dict) else response.data
        ids = [row.get("id") for row in rows or [] if isinstance(row, dict)]
        label = self.get_queryset().model._meta.label_lower
        record_read(self.actor, f"{self.audit_name}.listed", (label, "list"),
                    {"ids": ids, "query": {k: v for k, v in request.query_params.items() if k != "cursor"}})
        return response
