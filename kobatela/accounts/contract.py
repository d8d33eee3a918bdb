"""docs/api.md, the contract in the repository, read by the schema.

Each endpoint has one section in docs/api.md, headed::

    ### `POST /escrows/{id}/deposit` — Deposit into an escrow

(the path without ``/api/v1`` for the API, the full path for ``/health`` and
``/metrics``). The served schema takes each operation's summary (the words
after the dash) and description (the section's text) from there, so the
words are written once; a test fails when an operation of the schema has no
section (tests/api/test_contract.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings

API_PREFIX = "/api/v1"
_HEADING = re.compile(r"^### `(GET|POST|PUT|PATCH|DELETE) (/[^`]*)`(?:\s+[—-]\s+(.+))?\s*$")


@dataclass(frozen=True)
class Entry:
    method: str
    path: str
    summary: str
    description: str


def contract_path() -> Path:
    return Path(settings.BASE_DIR) / "docs" / "api.md"


@cache
def contract_entries() -> dict[tuple[str, str], Entry]:
    """(METHOD, path as the schema writes it) → its section of docs/api.md."""
    entries: dict[tuple[str, str], Entry] = {}
    path = contract_path()
    if not path.exists():
        return entries
    current: tuple[str, str, str] | None = None
    lines: list[str] = []

    def close() -> None:
        if current is not None:
            method, route, summary = current
            full = route if route.startswith(("/health", "/metrics")) else API_PREFIX + route
            entries[(method, full)] = Entry(method, full, summary, "\n".join(lines).strip())

    for line in path.read_text(encoding="utf-8").splitlines():
        match = _HEADING.match(line)
        if match or line.startswith(("## ", "### ", "# ")):
            close()
            current = (match.group(1), match.group(2), (match.group(3) or "").strip()) if match else None
            lines = []
        elif current is not None:
            lines.append(line)
    close()
    return entries


def contract_entry(method: str, path: str) -> Entry | None:
    return contract_entries().get((method.upper(), path))
