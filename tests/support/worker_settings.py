"""Settings of a Celery worker that a test starts as a subprocess: the test
settings, with the PSP pointed at the test's local fake Stripe when the
test says where it listens (``STRIPE_API_BASE``)."""

import os

from tests.settings import *  # noqa: F401,F403

STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE") or None
