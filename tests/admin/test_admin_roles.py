"""Back-office roles, the login's brute-force protection, and the admin's
error pages."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from kobatela.accounts.roles import OPERATIONS, REVIEWER, ROLES, sync_roles
from tests.admin.conftest import PASSWORD
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
LOGIN = reverse("admin:login")


def group_permissions(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def test_the_migrations_leave_the_groups_roles_py_describes():
    """accounts/0002 created the groups from its own snapshot; events/0002 moved the
    Event model's permissions to the events app with its content type;
    escrow/0004 (the latest) added disputes and refunds from its snapshot."""
    migration = importlib.import_module("kobatela.accounts.migrations.0002_admin_roles")
    moved = {"webhooks.view_event": "events.view_event"}
    first = {name: tuple(moved.get(p, p) for p in perms) for name, perms in migration.ROLES.items()}
    latest = importlib.import_module("escrow.migrations.0004_dispute_roles").ROLES
    assert latest == ROLES
    assert all(set(first[name]) <= set(latest[name]) for name in first)
    assert group_permissions(REVIEWER) == set(ROLES[REVIEWER])  # the test database was built by the migrations
    assert group_permissions(OPERATIONS) == set(ROLES[OPERATIONS])
    Group.objects.filter(name__in=[REVIEWER, OPERATIONS]).delete()
    sync_roles(apps, ROLES)
    assert group_permissions(REVIEWER) == set(ROLES[REVIEWER])
    assert group_permissions(OPERATIONS) == set(ROLES[OPERATIONS])


def test_roles(roles):
    reviewer, operations = group_permissions(REVIEWER), group_permissions(OPERATIONS)
    assert {"proofs.decide_proof", "proofs.triage_ai_flags", "audit.acknowledge_alert", "proofs.view_proof",
            "escrow.view_escrowagreement", "payments.view_payment", "audit.view_auditlog"} <= reviewer
    operations_only = {"webhooks.reprocess_inboundevent", "proofs.reprocess_proof", "payments.retry_payment"}
    assert operations_only <= operations and not operations_only & reviewer
    assert reviewer < operations
    # Nothing that adds, edits or deletes money, statuses or audit rows.
    editing = {p for p in operations if p.split(".")[1].startswith(("add_", "change_", "delete_"))}
    assert editing == {"webhooks.change_webhookdelivery"}  # only what webhooks.admin's redeliver action checks
    sync_roles()  # idempotent
    assert group_permissions(OPERATIONS) == operations


def test_staff_log_in_and_reviewers_land_on_the_queue(reviewer):
    client = Client()
    response = client.post(LOGIN, {"username": reviewer.email, "password": PASSWORD, "next": reverse("admin:index")},
                           follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:proofs_proof_changelist")


def test_five_failures_lock_the_username_and_ip_pair_out(reviewer):
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(4):
        response = client.post(LOGIN, {"username": reviewer.email, "password": "wrong"})
        assert response.status_code == 200  # the login form again, with its error
    assert client.post(LOGIN, {"username": reviewer.email, "password": "wrong"}).status_code == 429  # the 5th
    locked = client.post(LOGIN, {"username": reviewer.email, "password": PASSWORD})
    assert locked.status_code == 429  # even the right password, for 15 minutes
    assert "_auth_user_id" not in client.session
    # Another IP address is not locked out for that user (the pair is).
    other = Client(REMOTE_ADDR="198.51.100.9")
    assert other.post(LOGIN, {"username": reviewer.email, "password": PASSWORD}).status_code == 302


def test_axes_is_wired_as_required(settings):
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert settings.AXES_FAILURE_LIMIT == 5 and settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_admin_403_and_404_still_answer(reviewer_client):
    refused = reviewer_client.get(reverse("admin:webhooks_inboundevent_changelist"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    missing = reviewer_client.get(reverse("admin:index") + "no/such/page/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    gone = reviewer_client.get(reverse("admin:proofs_proof_change", args=[999_999]))
    assert gone.status_code == 302  # the admin's own "doesn't exist" redirect, with a message
    not_staff = Client()
    not_staff.force_login(UserFactory(is_staff=False))  # an API account: no admin
    assert not_staff.get(reverse("admin:proofs_proof_changelist")).status_code == 302  # to the login page
