"""The domain gauges of /metrics (kobatela.core.metrics and the collectors the
apps register), the AI guard in the detailed /health, the periodic-job stamps."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client

from escrow import services as escrow_services
from escrow.selectors import escrow_lock
from kobatela.core import metrics
from kobatela.core.locks import periodic_job
from kobatela.core.models import SchedulerHeartbeat
from tests.factories import fund, make_escrow
from tests.support.observed_stack import samples, total

pytestmark = pytest.mark.django_db


def _scrape() -> str:
    response = Client(REMOTE_ADDR="127.0.0.1").get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def test_payouts_by_status_and_proofs_waiting_by_age_are_counted_from_the_database():
    before = _scrape()
    escrow = fund(make_escrow(amounts=("40.00", "60.00")))
    with transaction.atomic():
        locked = escrow_lock(escrow.pk)
        escrow_services.milestone_approve(actor="system:test", escrow=locked,
                                          milestone=locked.milestones.order_by("pk").first(), reason="test")
    page = _scrape()
    created = sum(total(page, "kobatela_payouts", status=s) - total(before, "kobatela_payouts", status=s)
                  for s in ("PENDING", "SENT", "SETTLED", "ERROR"))
    assert created == 1
    ages = {labels["age"] for name, labels, _ in samples(page) if name == "kobatela_proofs_pending_review"}
    assert ages == {"lt_1h", "1h_4h", "4h_24h", "1d_3d", "gt_3d"}
    assert "kobatela_metrics_collector_up{collector=\"payouts\"} 1.0" in page


def test_a_failing_collector_is_reported_and_the_scrape_goes_on(monkeypatch):
    def broken():
        raise RuntimeError("database gone")

    monkeypatch.setitem(metrics.DOMAIN_COLLECTORS, "broken", broken)
    page = _scrape()
    assert 'kobatela_metrics_collector_up{collector="broken"} 0.0' in page
    assert "kobatela_payouts{" in page and "django_http_requests" in page


def test_the_detailed_health_shows_the_ai_breaker_and_daily_cap(support_api):
    guard = support_api.get("/health").json()["proofs"]["ai_guard"]
    assert guard["breaker"]["state"] == "closed"
    assert set(guard["daily_cap"]) == {"limit", "used", "remaining"}
    assert "kobatela_ai_daily_call_limit" in _scrape()


def test_a_periodic_job_that_ran_to_the_end_is_stamped_and_its_age_exported():
    with periodic_job("demo-sweep") as acquired:
        assert acquired
    assert SchedulerHeartbeat.objects.filter(name="job:demo-sweep").exists()
    assert 'kobatela_periodic_job_age_seconds{job="demo-sweep"}' in _scrape()

    with pytest.raises(ValueError), periodic_job("demo-failing") as acquired:
        raise ValueError("the job failed")
    assert not SchedulerHeartbeat.objects.filter(name="job:demo-failing").exists()
