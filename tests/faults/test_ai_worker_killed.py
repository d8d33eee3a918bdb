"""Drill: a worker is killed (``kill -9``) while it waits on the AI advisor.

Promised (issue #12): the AI job is neither lost nor doubled. The job's claim
(QUEUED → RUNNING, one conditional UPDATE) makes every later delivery of the
same message a no-op while the claim is live; once the claim is older than
AI_TIMEOUT_SECONDS + AI_STALE_MARGIN_SECONDS no worker can still be in the
call, so the broker's redelivery (acks_late, visibility timeout) claims it
again and gets the verdict. Counted at the local OpenAI-compatible server:
one completion answered, one verdict recorded; duplicated messages add no call.

The killed worker's request reached the server and was never answered (its
caller died): the server sees it arrive, and it is the only other request.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from kobatela.audit.models import AuditLog
from proofs.models import Proof
from proofs.services import proof_submit
from tests.factories import actor_for, fund, make_escrow
from tests.proofs.invoice_samples import SAMPLES, render_pdf
from tests.support.broker import RedisServer, celery_broker, start_worker, stop_workers, wait_for
from tests.support.openai_server import LOW_RISK, OpenAIStubServer

pytestmark = [pytest.mark.slow, pytest.mark.fault, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
AI_TIMEOUT = 4  # the worker's SDK timeout: the claim is stale after 4 + 2 s
VISIBILITY = 10  # the broker hands an unacknowledged message back after 10 s


def _worker(broker_url: str, ai_url: str) -> subprocess.Popen:
    return start_worker(broker_url, CELERY_VISIBILITY_TIMEOUT_SECONDS=str(VISIBILITY), AI_PROOF_ADVISOR_ENABLED="true",
                        OPENAI_API_KEY="sk-test-drill", OPENAI_BASE_URL=ai_url, AI_TIMEOUT_SECONDS=str(AI_TIMEOUT),
                        AI_STALE_MARGIN_SECONDS="2")


_wait = wait_for


def test_an_ai_call_cut_by_a_killed_worker_gives_one_answered_call_and_one_verdict(settings):
    settings.OCR_ENABLED = False  # the AI job is queued at once
    settings.AI_PROOF_ADVISOR_ENABLED = True
    redis = RedisServer()
    redis.start()
    workers: list[subprocess.Popen] = []
    try:
        with OpenAIStubServer() as ai:
            ai.set_reply(json.dumps(LOW_RISK), delay=120)  # the first call hangs: the worker dies in it
            escrow = fund(make_escrow(amounts=("2487.00",), currency="EUR", proof_type="INVOICE"))
            with celery_broker(redis.url):
                proof = proof_submit(actor=actor_for(escrow.client), escrow_id=escrow.pk, milestone_idx=1,
                                     proof_type="INVOICE", upload=SimpleUploadedFile("i.pdf", render_pdf(SAMPLES[0])))
            assert Proof.objects.get(pk=proof.pk).ai_status == "QUEUED" and redis.queued() == 1

            workers.append(_worker(redis.url, ai.base_url))
            assert _wait(lambda: ai.request_count == 1, 60), "the worker never called the model"
            assert Proof.objects.get(pk=proof.pk).ai_status == "RUNNING"
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(10)
            ai.set_reply(json.dumps(LOW_RISK))  # answers at once from now on

            # A duplicate of the message while the dead worker's claim is still live: refused, no call.
            with celery_broker(redis.url) as app:
                app.send_task("proofs.tasks.run_ai", args=[proof.pk])
            workers.append(_worker(redis.url, ai.base_url))
            done = _wait(lambda: Proof.objects.get(pk=proof.pk).ai_status == "DONE", VISIBILITY + 30)
            assert done, Proof.objects.get(pk=proof.pk).ai_status

            # Yet more deliveries after the verdict: nothing to claim.
            with celery_broker(redis.url) as app:
                app.send_task("proofs.tasks.run_ai", args=[proof.pk])
                app.send_task("proofs.tasks.run_ai", args=[proof.pk])
            assert _wait(lambda: redis.queued() == 0, 20)
            time.sleep(2)

            proof = Proof.objects.get(pk=proof.pk)
            verdicts = AuditLog.objects.filter(action="proof.ai_done", entity_id=str(proof.pk)).count()
            print(f"\nAI kill drill: {ai.request_count} requests arrived, {ai.answered} answered, {verdicts} verdict, "
                  f"{proof.ai_attempts} claims")
            assert ai.answered == 1  # one model call answered
            assert ai.request_count == 2  # the killed worker's, never answered, and the one that gave the verdict
            assert verdicts == 1 and proof.ai_status == "DONE" and proof.ai_risk_level == "low"
            assert proof.ai_attempts == 2
    finally:
        stop_workers(workers)
        redis.close()
