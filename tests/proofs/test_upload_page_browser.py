"""The upload page in a real browser on a phone-sized screen (390×844): Debian's Chromium
driven by Playwright against the live server. The "camera" is a file chooser fed a test photo."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from proofs.models import Proof, UploadLink
from proofs.upload_links import upload_link_create
from tests.factories import actor_for
from tests.proofs.photo_samples import geotagged_jpeg
from tests.providers.world import clean_photo_bytes, photo_escrow
from tests.support.browser import ARTIFACTS, chromium_page

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(live_server):
    with chromium_page(live_server.url, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=3,
                       user_agent="Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36") as page:
        yield page


def new_link(**kwargs) -> tuple[UploadLink, str]:
    escrow = photo_escrow()
    return upload_link_create(actor=actor_for(escrow.client), escrow_id=escrow.pk, milestone_idx=1,
                              **{"expires_in_hours": 24, "max_uploads": 3, **kwargs})


def take_photo(page, content: bytes) -> None:
    camera = page.locator("#file")
    assert camera.get_attribute("accept") == "image/*" and camera.get_attribute("capture") is not None
    camera.set_input_files({"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": content})
    page.locator("#send").tap()


def test_clean_photo_is_accepted_payment_on_its_way(phone):
    from playwright.sync_api import expect

    link, token = new_link()
    response = phone.goto(f"/api/v1/u/{token}")
    assert response.status == 200
    expect(phone.locator("h1")).to_have_text("Send your proof")
    expect(phone.locator("#milestone-label")).to_have_text("Step 1")
    expect(phone.locator("#expects")).to_contain_text("within 100 m")
    # Fits the phone: nothing wider than the screen.
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    take_photo(phone, clean_photo_bytes())
    expect(phone.locator("#verdict")).to_have_text(re.compile("accepted — payment on its way", re.I))
    expect(phone.locator("#verdict")).to_have_class(re.compile("accepted"))
    phone.screenshot(path=str(ARTIFACTS / "upload-page-accepted.png"), full_page=True)
    assert Proof.objects.get(upload_link=link).status == "APPROVED"


def test_doubtful_photo_is_waiting_for_review(phone):
    from playwright.sync_api import expect

    link, token = new_link()
    phone.goto(f"/api/v1/u/{token}")
    take_photo(phone, geotagged_jpeg(None, None, None))  # no time, no position: cannot be verified
    expect(phone.locator("#verdict")).to_contain_text(re.compile("waiting for review", re.I))
    phone.screenshot(path=str(ARTIFACTS / "upload-page-review.png"), full_page=True)
    assert Proof.objects.get(upload_link=link).status == "PENDING"


def test_photo_outside_the_place_is_refused_and_says_why(phone):
    from playwright.sync_api import expect

    _, token = new_link()
    phone.goto(f"/api/v1/u/{token}")
    take_photo(phone, geotagged_jpeg(Decimal("1.000000"), Decimal("1.000000"), timezone.now()))
    expect(phone.locator("#verdict")).to_contain_text(re.compile("^Refused: .+", re.I))
    assert not Proof.objects.exists()


def test_expired_link_shows_a_clear_page_with_410(phone):
    from playwright.sync_api import expect

    link, token = new_link()
    UploadLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = phone.goto(f"/api/v1/u/{token}")
    assert response.status == 410
    expect(phone.locator("h1")).to_have_text("This link is closed")
    expect(phone.locator("#message")).to_contain_text("expired")
    assert phone.locator("input[type=file]").count() == 0
    phone.screenshot(path=str(ARTIFACTS / "upload-page-expired.png"), full_page=True)
