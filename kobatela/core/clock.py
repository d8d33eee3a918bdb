"""The platform's clock: the one place jobs and rules ask what time it is.

Every deadline, inspection window, expiry and sweep compares against
``clock.now()`` rather than ``timezone.now()``, so that the sandbox test clock
(``POST /sandbox/clock/advance``) can move them all forward at once.

The offset lives in one database row (:class:`kobatela.core.models.ClockOffset`),
so every web worker, Celery worker and beat process sees the same time. It is
read only with ``PSP_PROVIDER=sandbox``: outside the sandbox ``now()`` is
``timezone.now()``, without a query, and the offset can never be set (the
endpoint answers 404 there).

The jobs that must run "as if time had passed" register themselves from their
app's ``AppConfig.ready()`` with :func:`register_clock_job`; :func:`advance`
moves the clock and runs them all, in registration order, with the new time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

ClockJob = Callable[[datetime], int]


_JOBS: dict[str, ClockJob] = {}


def register_clock_job(name: str, run: ClockJob) -> None:
    """``run(now) -> int`` (how many things it handled) is due whenever the test clock moves.

    Registered once per name (``ready()`` may run twice in tests): the last
    registration of a name wins."""
    _JOBS[name] = run


def test_clock_enabled() -> bool:
    """The test clock exists only with the sandbox PSP."""
    return settings.PSP_PROVIDER == "sandbox"


def offset() -> timedelta:
    """How far the test clock is ahead of real time (zero outside the sandbox)."""
    if not test_clock_enabled():
        return timedelta(0)
    from kobatela.core.models import ClockOffset  # models import settings-dependent apps; keep this module light

    seconds = ClockOffset.objects.filter(pk=ClockOffset.SINGLETON).values_list("seconds", flat=True).first()
    return timedelta(seconds=seconds or 0)


def now() -> datetime:
    """The current time on the platform's clock (aware, UTC)."""
    if not test_clock_enabled():
        return timezone.now()
    return timezone.now() + offset()


def advance(*, hours: int) -> tuple[datetime, dict[str, int]]:
    """Move the test clock ``hours`` forward, then run every registered job at the new time.

    Returns the new time and what each job handled. Refuses outside the sandbox."""
    if not test_clock_enabled():
        raise RuntimeError("The test clock exists only with PSP_PROVIDER=sandbox.")
    from django.db import transaction
    from django.db.models import F

    from kobatela.core.models import ClockOffset

    with transaction.atomic():
        ClockOffset.objects.get_or_create(pk=ClockOffset.SINGLETON, defaults={"seconds": 0})
        ClockOffset.objects.filter(pk=ClockOffset.SINGLETON).update(seconds=F("seconds") + hours * 3600)
    moved_to = now()
    return moved_to, {name: run(moved_to) for name, run in list(_JOBS.items())}
