"""Every error under /api/ is JSON in the contract's shape, DEBUG on or off."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import path

from tests.conftest import assert_error


def _boom(request):
    raise RuntimeError("a bug")


urlpatterns = [path("api/v1/boom", _boom)]


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_unknown_api_paths_answer_json_404(settings, debug):
    settings.DEBUG = debug
    response = Client().get("/api/v1/no-such-thing")
    assert_error(response, 404, "not_found")
    assert_error(Client().get("/api/nothing/here"), 404, "not_found")


@pytest.mark.django_db
def test_a_bug_answers_json_500_in_debug(settings):
    settings.DEBUG = True
    settings.ROOT_URLCONF = __name__
    response = Client(raise_request_exception=False).get("/api/v1/boom")
    assert_error(response, 500, "internal_error")
