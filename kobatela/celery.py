"""The Celery app: ``celery -A kobatela worker`` / ``celery -A kobatela beat``.

Configuration comes from Django settings (``CELERY_*``), including the one
beat schedule (``CELERY_BEAT_SCHEDULE``). ``kobatela.core.celery_process``
connects the process hooks: JSON logs with task and request ids, task
metrics, the worker's metrics endpoint.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kobatela.settings")

app = Celery("kobatela")
# The app of every thread, not only of the one that imported this module: services send
# tasks by name through ``celery.current_app`` (kobatela.core.queue), also from request
# threads and from the test suite's concurrency threads.
app.set_default()
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

import kobatela.core.celery_process  # noqa: E402,F401  (connects the signal handlers)
