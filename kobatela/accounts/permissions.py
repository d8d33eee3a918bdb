"""Scope permissions.

Every API view declares ``required_scopes``: either one set for the whole
view, or a dict from viewset action to set. A key passes when it holds any of
the listed scopes; ``admin`` may do everything ``support`` may. A view (or an
action) that declares nothing refuses everyone — fail closed.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from kobatela.core.errors import Forbidden


def required_scopes_for(view) -> frozenset[str]:
    declared = getattr(view, "required_scopes", None)
    if isinstance(declared, dict):
        declared = declared.get(getattr(view, "action", None), ())
    return frozenset(declared or ())


class HasScope(BasePermission):
    message = "This API key does not have the scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        if request.auth is None:
            return False  # DRF turns this into 401 for an anonymous request
        required = required_scopes_for(view)
        if required and request.auth.effective_scopes & required:
            return True
        # The 403 names what was needed, so the integrator knows which key to use.
        needed = sorted(required)
        raise Forbidden(
            "permission_denied",
            f"This API key lacks the scope this endpoint needs: {' or '.join(needed) or 'none is granted'}.",
            details={"required_scopes": needed},
        )
