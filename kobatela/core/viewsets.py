"""The base of every API view: scopes, tenancy and idempotency in one place."""

from __future__ import annotations

from functools import cached_property

from rest_framework import exceptions, viewsets
from rest_framework.views import APIView

from kobatela.core import throttling
from kobatela.core.actor import Actor
from kobatela.core.idempotency import run_idempotent

# Ids in URLs are bounded so an absurd id is a 404, never a database overflow.
ID_PATTERN = r"[0-9]{1,18}"


class ApiViewMixin:
    """Declare ``required_scopes`` (see ``kobatela.accounts.permissions``) and,
    for money-moving actions, ``idempotency_required_actions``. Every POST
    accepts ``Idempotency-Key``; those actions require it."""

    idempotency_required_actions: frozenset[str] = frozenset()
    # The methods a route declares, nothing else: OPTIONS is not part of the
    # contract (the schema describes every route), so it answers 405 like PUT.
    http_method_names = ["get", "post", "put", "patch", "delete", "head"]

    @cached_property
    def actor(self) -> Actor:
        return self.request.auth.as_actor()  # the authenticated ApiKey (kobatela.accounts)

    def validated(self, serializer_class, data=None) -> dict:
        """The request body parsed by ``serializer_class``, or a 400 in the error shape."""
        serializer = serializer_class(data=self.request.data if data is None else data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def validated_query(self, serializer_class) -> dict:
        """The query parameters parsed by ``serializer_class``, or a 400.

        Given as a plain dict (the last value of a repeated parameter): DRF
        reads a QueryDict as an HTML form, where ``?status=`` means "not
        given" and an invalid filter would be silently dropped."""
        return self.validated(serializer_class, data=self.request.query_params.dict())

    def check_throttles(self, request):
        # The per-API-key limit (docs/api.md "Limits"), after authentication; the
        # decision is kept so that every response, a refusal included, says it.
        request.rate_limit = decision = throttling.api_key_decision(request.auth)
        if decision is not None and not decision.allowed:
            raise throttling.refusal(decision)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        decision = getattr(request, "rate_limit", None)
        if decision is not None:
            for name, value in decision.headers().items():
                response[name] = value
        return response

    def initial(self, request, *args, **kwargs):
        # An undeclared method is 405 before authentication and scopes: there is
        # nothing to authorize, and a viewset's scopes are per action, so the
        # missing action would otherwise read as 403. APIView adds ``Allow`` to
        # every response (``allowed_methods``: the handlers this view has).
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)
        if method == "post":
            handler = self.post
            required = getattr(self, "action", None) in self.idempotency_required_actions

            def post_once(req, *a, **kw):
                return run_idempotent(self, req, handler, *a, required=required, **kw)

            self.post = post_once


class ApiView(ApiViewMixin, APIView):
    pass


class ScopedViewSet(ApiViewMixin, viewsets.GenericViewSet):
    """A viewset whose every read goes through a selector that takes the actor.

    Subclasses implement :meth:`scoped_queryset`. Because ``get_object``
    filters that queryset, another tenant's id is simply not found (404).
    """

    lookup_value_regex = ID_PATTERN
    # A Serializer validating the list's query parameters (?status=…): a bad
    # value is a 400 in the error shape, never a silently empty list. Its
    # validated data is applied as ``.filter(**data)``. There are no
    # filter backends: this is the one way a list is filtered.
    list_filter_serializer: type | None = None

    def filter_queryset(self, queryset):
        if getattr(self, "action", None) == "list" and self.list_filter_serializer is not None:
            queryset = queryset.filter(**self.validated_query(self.list_filter_serializer))
        return super().filter_queryset(queryset)

    def scoped_queryset(self, actor: Actor):
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # OpenAPI generation: no request, no rows
            return self.scoped_queryset(Actor.system("openapi")).none()
        return self.scoped_queryset(self.actor)
