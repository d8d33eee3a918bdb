"""The platform's clock: the one place jobs and rules ask what time it is.

Every deadline, inspection window, expiry and sweep compares against
``clock.now()`` rather than ``timezone.now()``, so that the sandbox test clock
(``POST /sandbox/clock/advance``) can move them all forward at once. Outside
the sandbox the offset is always zero and ``now()`` is ``timezone.now()``.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    """The current time on the platform's clock (aware, UTC)."""
    return timezone.now()
