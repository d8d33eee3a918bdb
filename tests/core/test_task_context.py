"""Task and request ids around Celery tasks (kobatela.core.celery_process),
in-process: a task run eagerly inside a request keeps the request's id and
leaves it as it found it; the publish signal puts the id in the headers."""

import logging

import pytest
from celery import signals

from kobatela.core import celery_process
from kobatela.core.logging import RequestIdFilter
from kobatela.core.request_context import get_request_id, get_task, reset_request_id, set_request_id

pytestmark = pytest.mark.django_db


def test_an_eager_task_logs_with_its_id_and_the_request_id_and_restores_the_context(caplog):
    from kobatela.core.tasks import purge_idempotency_keys

    token = set_request_id("req-eager-1")
    caplog.handler.addFilter(RequestIdFilter())
    try:
        with caplog.at_level(logging.INFO, logger="kobatela.core.tasks"):
            result = purge_idempotency_keys.apply()
        assert get_request_id() == "req-eager-1" and get_task() is None
    finally:
        reset_request_id(token)
    record = next(r for r in caplog.records if r.getMessage() == "purged idempotency keys")
    assert record.request_id == "req-eager-1"
    assert record.task_id == result.id and record.task_name == "kobatela.core.tasks.purge_idempotency_keys"


def test_a_published_task_carries_the_request_id_in_its_headers():
    headers = {}
    token = set_request_id("req-publish-1")
    try:
        signals.before_task_publish.send(sender="some.task", headers=headers, body=None)
    finally:
        reset_request_id(token)
    assert headers[celery_process.REQUEST_ID_HEADER] == "req-publish-1"
