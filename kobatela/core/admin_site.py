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

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.shortcuts import redirect


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
