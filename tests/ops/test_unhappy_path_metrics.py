"""One scrape of /metrics after the unhappy paths (#18 item 1): open disputes, refunds by
status, payouts held by payee verification, and the audit seal lag of a stopped sealer —
all computed at scrape time from the database (``register_collector``), not set by a job."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import transaction
from django.test import Client
from django.utils import timezone

from escrow import services as escrow_services
from escrow.disputes import dispute_open, dispute_withdraw
from escrow.refunds import escrow_refund, refund_fail
from escrow.selectors import escrow_lock
from kobatela.accounts.models import PayoutStatus
from kobatela.audit import services as audit
from kobatela.audit.models import AuditLog
from tests.factories import UserFactory, actor_for, fund, make_escrow
from tests.support.observed_stack import total

pytestmark = pytest.mark.django_db


def scrape() -> str:
    response = Client(REMOTE_ADDR="127.0.0.1").get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def value(page: str, name: str, **labels: str) -> float:
    return total(page, name, **labels)


def test_one_scrape_shows_disputes_refunds_blocked_payouts_and_the_seal_lag():
    head = audit.audit_seal().head_seq  # start from a sealed chain; from here on the sealer is "stopped"
    before = scrape()
    assert value(before, "kobatela_audit_unsealed_rows") == 0
    assert value(before, "kobatela_audit_seal_lag_seconds") == 0

    disputed = fund(make_escrow(amounts=("80.00",)))
    dispute_open(actor=actor_for(disputed.client), escrow_id=disputed.pk, reason="Work not done.")
    withdrawn = fund(make_escrow(amounts=("30.00",)))
    dispute_withdraw(actor=actor_for(withdrawn.client),
                     dispute_id=dispute_open(actor=actor_for(withdrawn.client), escrow_id=withdrawn.pk,
                                             reason="Changed my mind.").pk)

    refunded = fund(make_escrow(amounts=("100.00",)))
    client = actor_for(refunded.client)
    pending = escrow_refund(actor=client, escrow_id=refunded.pk, reason="Partly cancelled.", amount=Decimal("40.00"))
    failed = escrow_refund(actor=client, escrow_id=refunded.pk, reason="The rest.", amount=Decimal("10.00"))
    refund_fail(actor="system:test", refund_id=failed.pk, failure_code="expired_card")

    unverified = UserFactory(payout_status=PayoutStatus.UNVERIFIED)
    held = fund(make_escrow(provider=unverified, amounts=("25.00",)))
    with transaction.atomic():
        locked = escrow_lock(held.pk)
        escrow_services.milestone_approve(actor="system:test", escrow=locked,
                                          milestone=locked.milestones.get(), reason="done")

    unsealed = AuditLog.objects.filter(pk__gt=head).count()
    assert unsealed > 0
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        page = scrape()

    assert value(page, "kobatela_disputes_open") - value(before, "kobatela_disputes_open") == 1
    assert value(page, "kobatela_disputes_oldest_open_seconds") >= 600  # dispute #1 is the oldest open one
    for status, grew in (("PENDING", 1), ("SENT", 0), ("SETTLED", 0), ("FAILED", 1)):
        assert value(page, "kobatela_refunds", status=status) - value(before, "kobatela_refunds", status=status) \
            == grew, status
    assert pending.status == "PENDING" and value(page, "kobatela_refunds_oldest_pending_seconds") >= 600
    assert value(page, "kobatela_payouts_blocked", reason="payee_not_verified") \
        - value(before, "kobatela_payouts_blocked", reason="payee_not_verified") == 1
    assert 'kobatela_payouts_blocked{reason="payee_paused"}' in page
    assert value(page, "kobatela_payouts_blocked_oldest_seconds") >= 600
    # A stopped sealer: the rows written since are unsealed and the lag grows with the clock.
    assert value(page, "kobatela_audit_unsealed_rows") == unsealed
    assert value(page, "kobatela_audit_seal_lag_seconds") >= 600
    for collector in ("disputes", "refunds", "payouts", "audit_seal"):
        assert f'kobatela_metrics_collector_up{{collector="{collector}"}} 1.0' in page

    audit.audit_seal()  # the sealer runs again: the lag is gone at the next scrape
    after = scrape()
    assert value(after, "kobatela_audit_unsealed_rows") == 0 and value(after, "kobatela_audit_seal_lag_seconds") == 0

