"""The back office: Django's admin with Kobatela's site.

Installed in place of ``django.contrib.admin`` (``BackOfficeAdminConfig``),
so ``admin.site`` — which every app's ``admin.py`` registers on and
``kobatela.urls`` mounts at ``ADMIN_URL_PATH`` — is a ``BackOfficeSite``.

What the site adds: reviewers land on the proof review queue instead of the
app index (the queue is their work; the sidebar still lists everything their
group may see). Everything else lives in each app's ``admin.py``, and every
admin action there goes through a service that writes an audit row naming
the staff user (``Actor.staff``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.admin.apps import AdminConfig
from django.shortcuts import redirect

from kobatela.core.errors import DomainError


class BackOfficeSite(admin.AdminSite):
    site_header = "Kobatela back office"
    site_title = "Kobatela back office"
    index_title = "Back office"
    site_url = None  # no public site to link to: "/" is the API's

    def index(self, request, extra_context=None):
        user = request.user
        if not user.is_superuser and user.has_perm("proofs.decide_proof"):
            return redirect("admin:proofs_proof_changelist")
        return super().index(request, extra_context)


class BackOfficeAdminConfig(AdminConfig):
    default_site = "kobatela.core.admin_site.BackOfficeSite"


class ReadOnlyAdminMixin:
    """For model admins and inlines that show and never edit: money, statuses and
    audit rows change only through services (admin actions call them)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def run_for_each_selected(model_admin, request, queryset, call: Callable[[int], object], *, done: str,
                          refused_prefix: str = "Refused", refused_level: int = messages.ERROR) -> None:
    """An admin action's body: ``call(pk)`` for each selected row, in pk order,
    through the service it wraps; then one message with how many were ``done``
    ("3 proof(s) sent back to OCR.") and one naming each row the service
    refused, with its code ("Refused: #4 (proof_is_photo).")."""
    ok, refused = 0, []
    for pk in queryset.order_by("pk").values_list("pk", flat=True):
        try:
            call(pk)
            ok += 1
        except DomainError as exc:
            refused.append(f"#{pk} ({exc.code})")
    if ok:
        model_admin.message_user(request, f"{ok} {queryset.model._meta.model_name}(s) {done}.", messages.SUCCESS)
    if refused:
        model_admin.message_user(request, f"{refused_prefix}: {', '.join(refused)}.", refused_level)
