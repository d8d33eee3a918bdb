"""Which error ``code`` values an operation can answer, read from the code itself.

The schema lists, per operation and status, the codes the operation can carry
(an enum, plus a pattern for codes built at run time such as
``escrow_is_<status>``). Nothing is written twice: the codes are found by
reading the source of the view's handler and, transitively, of every project
function it calls or refers to (services, selectors, helpers, the handler maps
of the webhooks), collecting each construction of a
:class:`kobatela.core.errors.DomainError` subclass (``raise Conflict("…")``,
``missing=NotFound("…")``) and each DRF exception. A view may add what no
reading can see with ``raises`` (a tuple of DomainError instances, or a dict
from action to such a tuple).

Codes every view can answer come from the framework's own pieces, read the
same way: the idempotency unit (POST), authentication, scopes, the rate limit,
the outage middleware; plus DRF's own exceptions (parse, negotiation, media type).
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import textwrap
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from rest_framework import exceptions as drf_exceptions

from kobatela.core.errors import DomainError

PROJECT_PACKAGES = ("kobatela", "escrow", "payments", "proofs", "spend", "webhooks")
MAX_DEPTH = 12
_DYNAMIC = "[a-z0-9_]+"


@dataclass
class Codes:
    """status → the codes seen (``enum``) and the shapes of the codes built at run time (``patterns``)."""

    enum: dict[int, set[str]] = field(default_factory=dict)
    patterns: dict[int, set[str]] = field(default_factory=dict)

    def add(self, status: int, code: str | None = None, pattern: str | None = None) -> None:
        self.enum.setdefault(status, set())
        self.patterns.setdefault(status, set())
        if code:
            self.enum[status].add(code)
        if pattern:
            self.patterns[status].add(pattern)

    def merge(self, other: Codes) -> None:
        for status, codes in other.enum.items():
            for code in codes:
                self.add(status, code)
        for status, patterns in other.patterns.items():
            for pattern in patterns:
                self.add(status, pattern=pattern)

    def statuses(self) -> set[int]:
        return set(self.enum) | set(self.patterns)

    def code_schema(self, status: int) -> dict:
        enum = sorted(self.enum.get(status, ()))
        patterns = sorted(self.patterns.get(status, ()))
        if not patterns:
            return {"type": "string", "enum": enum}
        pattern = "^(?:" + "|".join(patterns) + ")$"
        if not enum:
            return {"type": "string", "pattern": pattern}
        return {"anyOf": [{"type": "string", "enum": enum}, {"type": "string", "pattern": pattern}]}


def _is_project(obj) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module.split(".")[0] in PROJECT_PACKAGES


def _drf_code(cls: type) -> tuple[int, str]:
    if issubclass(cls, drf_exceptions.ValidationError):
        return 400, "validation_error"  # the exception handler's name for every field error
    return cls.status_code, cls.default_code


def _code_param_index(cls: type[DomainError]) -> int | None:
    """Where ``code`` sits among the positional arguments of ``cls(...)`` (None: keyword-only)."""
    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    for index, param in enumerate(params):
        if param.name == "code":
            return index if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD) else None
    return None


def _literal(node: ast.AST | None) -> tuple[str | None, str | None]:
    """(constant string, or regex of an f-string) of an argument node."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, None
    if isinstance(node, ast.JoinedStr):
        parts = [re.escape(v.value) if isinstance(v, ast.Constant) else _DYNAMIC for v in node.values]
        return None, "".join(parts)
    return None, None


@cache
def _module_dict_codes(module_name: str) -> tuple[str, ...]:
    """The constant ``"code"`` values of the dict literals of a module (checks that
    collect ``{"code": …, "message": …}`` entries and raise the first one)."""
    import sys

    module = sys.modules.get(module_name)
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return ()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (isinstance(key, ast.Constant) and key.value == "code" and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)):
                    found.append(value.value)
    return tuple(sorted(set(found)))


def _domain_error(cls: type[DomainError], call: ast.Call, codes: Codes, func=None, pending=None) -> None:
    status = cls.status
    code_node = None
    for keyword in call.keywords:
        if keyword.arg == "code":
            code_node = keyword.value
        elif keyword.arg == "status" and isinstance(keyword.value, ast.Constant):
            status = keyword.value.value
    index = _code_param_index(cls)
    if code_node is None and index is not None and len(call.args) > index:
        code_node = call.args[index]
    if code_node is None or (isinstance(code_node, ast.Constant) and code_node.value is None):
        codes.add(status, cls.default_code)
        return
    code, pattern = _literal(code_node)
    if code or pattern:
        codes.add(status, code, pattern)
    elif (isinstance(code_node, ast.Name) and func is not None and pending is not None
          and code_node.id in inspect.signature(func).parameters):
        # A parameter: the values the callers pass (collected over the whole reading).
        pending.append((func, code_node.id, status))
    elif (isinstance(code_node, ast.Attribute) and isinstance(code_node.value, ast.Name)
          and code_node.value.id == "self" and func is not None and pending is not None
          and "." in func.__qualname__):
        # ``self.code`` in a method: what the class's constructor was given (``TargetError("…", …)``).
        owner = func.__globals__.get(func.__qualname__.split(".")[0])
        init = getattr(owner, "__init__", None)
        if inspect.isfunction(init) and code_node.attr in inspect.signature(init).parameters:
            pending.append((init, code_node.attr, status))
        else:
            codes.add(status, cls.default_code)
    elif (isinstance(code_node, ast.Subscript) and isinstance(code_node.slice, ast.Constant)
          and code_node.slice.value == "code" and func is not None):
        for found in _module_dict_codes(func.__module__):
            codes.add(status, found)
    else:  # anything else: whatever the class may be given; its default is the best we can say
        codes.add(status, cls.default_code)


class _Reader:
    def __init__(self, owner: type | None) -> None:
        self.owner = owner  # the view class, for ``self.x``
        self.seen: set[int] = set()
        self.codes = Codes()
        self.pending: list[tuple] = []  # (function, parameter, status): a code given by the callers
        self.arguments: dict[tuple[int, str], set[tuple[str | None, str | None]]] = {}

    def resolve(self, node: ast.AST, scope: dict):
        if isinstance(node, ast.Name):
            return scope.get(node.id)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls") and self.owner is not None:
                return getattr(self.owner, node.attr, None)
            base = self.resolve(node.value, scope)
            if isinstance(base, (types.ModuleType, type)):
                return getattr(base, node.attr, None)
        return None

    def visit_object(self, obj, depth: int) -> None:
        if depth > MAX_DEPTH or obj is None:
            return
        if isinstance(obj, dict) and id(obj) not in self.seen:
            self.seen.add(id(obj))
            for value in list(obj.values()):
                if callable(value) and _is_project(value):
                    self.visit_object(value, depth + 1)
            return
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        if isinstance(obj, functools.partial):
            obj = obj.func
        obj = inspect.unwrap(obj) if callable(obj) else obj
        if not (inspect.isfunction(obj) or inspect.ismethod(obj)) or not _is_project(obj):
            return
        func = obj.__func__ if inspect.ismethod(obj) else obj
        if id(func) in self.seen:
            return
        self.seen.add(id(func))
        self.read_function(func, depth)

    def read_function(self, func, depth: int) -> None:
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
        except (OSError, TypeError, SyntaxError):
            return
        scope = dict(func.__globals__)
        if func.__closure__:
            scope.update({name: cell.cell_contents for name, cell in
                          zip(func.__code__.co_freevars, func.__closure__, strict=False) if _cell_ok(cell)})
        for handler in ast.walk(tree):  # ``except TargetError as exc: raise exc.as_validation_error()``
            if isinstance(handler, ast.ExceptHandler) and handler.name and handler.type is not None:
                caught = self.resolve(handler.type, scope)
                if isinstance(caught, type) and _is_project(caught):
                    scope[handler.name] = caught
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                target = self.resolve(node.func, scope)
                if isinstance(target, type) and issubclass(target, DomainError):
                    _domain_error(target, node, self.codes, func, self.pending)
                    continue
                if isinstance(target, type) and issubclass(target, drf_exceptions.APIException):
                    self.codes.add(*_drf_code(target))
                    continue
                if isinstance(target, type) and _is_project(target) and inspect.isfunction(target.__init__):
                    self.note_arguments(target.__init__, node, bound=True)
                self.note_arguments(target, node)
                self.visit_object(target, depth + 1)
            elif isinstance(node, (ast.Name, ast.Attribute)) and isinstance(getattr(node, "ctx", None), ast.Load):
                target = self.resolve(node, scope)
                if isinstance(target, dict) or (callable(target) and not isinstance(target, type)):
                    self.visit_object(target, depth + 1)


    def note_arguments(self, target, call: ast.Call, bound: bool = False) -> None:
        """The literal strings a call passes, by the callee's parameter names
        (``bound``: a constructor, whose ``self`` the call does not pass)."""
        target = inspect.unwrap(target) if callable(target) else target
        if not inspect.isfunction(target) or not _is_project(target):
            return
        try:
            params = list(inspect.signature(target).parameters)[1 if bound else 0:]
        except (TypeError, ValueError):
            return
        named = list(zip(params, call.args, strict=False))
        named += [(k.arg, k.value) for k in call.keywords if k.arg]
        for name, node in named:
            code, pattern = _literal(node)
            if code or pattern:
                self.arguments.setdefault((id(target), name), set()).add((code, pattern))

    def finish(self) -> Codes:
        for func, param, status in self.pending:
            given = self.arguments.get((id(func), param), set())
            for code, pattern in given:
                self.codes.add(status, code, pattern)
            default = inspect.signature(func).parameters[param].default
            if isinstance(default, str):
                self.codes.add(status, default)
        self.pending.clear()
        return self.codes


def _cell_ok(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
        return True
    except ValueError:
        return False


def codes_of(functions: Iterable, owner: type | None = None) -> Codes:
    """Every code the given functions (and what they reach) can raise."""
    reader = _Reader(owner)
    for function in functions:
        reader.visit_object(function, 0)
    return reader.finish()


def declared(items: Iterable) -> Codes:
    """What a view declares in ``raises``: DomainError instances or classes, or
    functions to read (what it calls through an object no reading can follow,
    e.g. the configured PSP adapter)."""
    codes = Codes()
    for item in items:
        if isinstance(item, DomainError):
            codes.add(item.status, item.code)
        elif isinstance(item, type) and issubclass(item, DomainError):
            codes.add(item.status, item.default_code)
        elif callable(item):
            codes.merge(codes_of([item]))
    return codes


@cache
def framework_codes() -> dict[str, Codes]:
    """The codes the shared machinery adds, by where they apply: ``keyed`` (an
    API key is needed: authentication, scopes, the rate limit), ``always``,
    ``body``, ``post`` (the idempotency unit) and ``query``."""
    from kobatela.accounts import authentication, permissions
    from kobatela.core import idempotency, throttling

    keyed = Codes()
    keyed.add(401, "not_authenticated")
    keyed.merge(codes_of([authentication.ApiKeyAuthentication.authenticate, permissions.HasScope.has_permission]))
    keyed.merge(codes_of([throttling.refusal]))
    always = Codes()
    always.add(*_drf_code(drf_exceptions.NotAcceptable))
    always.add(503, "service_unavailable")  # kobatela.core.outages: a database or cache outage
    body = Codes()
    for error in (drf_exceptions.ParseError, drf_exceptions.UnsupportedMediaType, drf_exceptions.ValidationError):
        body.add(*_drf_code(error))
    body.add(413, "payload_too_large")  # kobatela.core.middleware.BodySizeLimitMiddleware
    query = Codes()
    query.add(400, "validation_error")  # list filters and pagination (kobatela.core.viewsets, pagination)
    return {"keyed": keyed, "always": always, "body": body, "post": codes_of([idempotency.run_idempotent]),
            "query": query}


def fallback_code(status: int) -> str | None:
    """The generic code of a status (``kobatela.core.errors``), for a status no reading found a code for."""
    for error in DomainError.__subclasses__():
        if error.__module__ == DomainError.__module__ and error.status == status:
            return error.default_code
    return None
