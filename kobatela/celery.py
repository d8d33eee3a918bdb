"""The Celery app: ``celery -A kobatela worker`` / ``celery -A kobatela beat``.

Configuration comes from Django settings (``CELERY_*``), including the one
beat schedule (``CELERY_BEAT_SCHEDULE``).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kobatela.settings")

app = Celery("kobatela")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
