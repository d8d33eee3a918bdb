"""Debian's Chromium driven by Playwright, for the tests that need a real browser."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from django.db import connections

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@contextmanager
def chromium_page(base_url: str, *, viewport: dict[str, int], **context_options):
    """A Chromium page (Debian's /usr/bin/chromium, never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an asyncio event loop in this (the test's)
    # thread for as long as it is started. Django then sees a "running event
    # loop" around every ORM call the test makes (creating data, checking the
    # database after a click) and refuses it with SynchronousOnlyOperation,
    # although nothing here is async: the ORM calls are plain blocking calls
    # between two browser steps, and the live server answers the browser from
    # its own thread. Allowed for the browser's lifetime only, then restored,
    # so no other test runs with the check off.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    ARTIFACTS.mkdir(exist_ok=True)
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=viewport, base_url=base_url, **context_options)
        context.set_default_timeout(15_000)
        page = context.new_page()
        yield page
        context.close()
        browser.close()
    finally:
        # Connections the test opened while the loop ran are not the ones the
        # test database's teardown closes: close them here, or PostgreSQL
        # refuses to drop the test database at the end of the run.
        connections.close_all()
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
