"""Test-only routes on top of the real ones: views whose behaviour the tests
control (a crash, a slow request, a 503), to exercise the shared machinery."""

import threading

from django.urls import include, path
from rest_framework.response import Response

from kobatela.core.errors import ServiceUnavailable
from kobatela.core.viewsets import ApiView


class Probe:
    """Shared state the tests set and read."""

    calls = 0
    fail_with_503 = False
    release = threading.Event()
    started = threading.Event()
    lock = threading.Lock()


class CountingView(ApiView):
    required_scopes = {"sender"}

    def post(self, request):
        with Probe.lock:
            Probe.calls += 1
        if Probe.fail_with_503:
            raise ServiceUnavailable("psp_down", "Try again.")
        return Response({"calls": Probe.calls, "echo": request.data}, status=201)


class RequiredKeyView(CountingView):
    idempotency_required_actions = frozenset({None})  # APIView: no action name


class SlowView(ApiView):
    required_scopes = {"sender"}

    def post(self, request):
        Probe.started.set()
        Probe.release.wait(10)
        return Response({"done": True}, status=201)


def boom(request):
    raise RuntimeError("a bug")


urlpatterns = [
    path("test/counting", CountingView.as_view()),
    path("test/required", RequiredKeyView.as_view()),
    path("test/slow", SlowView.as_view()),
    path("test/boom", boom),
    path("", include("kobatela.urls")),
]
handler400 = "kobatela.core.views.bad_request"
handler404 = "kobatela.core.views.page_not_found"
handler500 = "kobatela.core.views.server_error"
