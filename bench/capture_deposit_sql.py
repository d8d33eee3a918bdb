"""Capture the SQL of one real deposit request (the source of bench/deposit.sql).

Usage: python bench/capture_deposit_sql.py <api key> <escrow id> [--check bench/deposit.sql]

Sends POST /api/v1/escrows/<id>/deposit through the whole Django stack
(middleware, API-key auth, idempotency claim/store, the service, the
response serializer) with ``django.test.Client``, against the database in
DATABASE_URL. Two deposits warm the API-key cache first; the third one is
captured with ``CaptureQueriesContext`` and printed, each statement tagged
with the transaction it ran in ("auto" = autocommit, its own transaction).

The idempotency claim (an autocommit INSERT that also takes the key's
liveness lock) and the transaction that holds the escrow row lock (the
request's unit, which ``escrow_deposit`` joins, and where the key's answer is
stored, releasing that lock) are printed again on their own, with their
"shape" (verb + table per statement, ``+lock``/``+unlock`` when the statement
carries the lock), followed by whatever else the request sent. With ``--check``, that shape is
compared with the one of the pgbench script; the last line says
``shape: MATCH`` or ``shape: DIFFERS`` so bench/run.sh can report it.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kobatela.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402


def shape(sql: str) -> str:
    """``VERB table`` of one statement: enough to compare with the pgbench script."""
    s = " ".join(sql.split())
    up = s.upper()
    if up.startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")):
        return up.split(" ")[0]
    if up.startswith("SELECT PG_") and "ADVISORY" in up:  # a lock statement of its own
        return "UNLOCK advisory" if "UNLOCK" in up else "LOCK advisory"
    # The key's liveness lock rides on the claim's INSERT and the answer's UPDATE.
    rides = " +lock" if "PG_TRY_ADVISORY_LOCK" in up else " +unlock" if "PG_ADVISORY_UNLOCK" in up else ""
    m = re.match(r'(?i)(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b', s)
    verb = m.group(1).split()[0].upper() if m else s.split(" ")[0].upper()
    if verb == "SELECT":
        t = re.search(r'(?i)\bFROM\s+"?(\w+)"?', s)
    else:
        t = re.search(r'(?i)^(?:INSERT INTO|UPDATE|DELETE FROM)\s+"?(\w+)"?', s)
    table = t.group(1) if t else "?"
    if verb == "SELECT" and re.search(r"(?i)\bFOR UPDATE\b", s):
        verb = "SELECT-FOR-UPDATE"
    return f"{verb} {table}{rides}"


def script_shape(path: Path) -> list[str]:
    """Shapes of the statements of a pgbench script (meta-commands and comments skipped)."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith(("\\", "--"))]
    # A trailing \gset ends a statement just as a semicolon does.
    text = "\n".join(re.sub(r"\\gset\s*\w*\s*$", ";", line) for line in lines)
    return [shape(stmt) for stmt in (p.strip() for p in text.split(";")) if stmt]


def transactions(queries: list[str]) -> tuple[list[str], str | None]:
    """Each statement's transaction ("auto": autocommit, its own; "txnN": the
    N-th explicit one; Django logs BEGIN/COMMIT too), and the one that locked
    the escrow row: the request's unit, which ``escrow_deposit`` joins."""
    labels, txns, current, durable = [], 0, None, None
    for sql in queries:
        verb = sql.split(" ", 1)[0].upper()
        if verb == "BEGIN":
            txns += 1
            current = f"txn{txns}"
        labels.append(current or "auto")
        if current and durable is None and re.search(r"(?i)\bFOR UPDATE\b", sql) and "escrow_escrowagreement" in sql:
            durable = current
        if verb in ("COMMIT", "ROLLBACK"):
            current = None
    return labels, durable


def floor_statements(queries: list[str]) -> tuple[list[str], list[str]]:
    """What the floor runs — the key's claim (its own autocommit INSERT, just
    before) and the transaction in which the deposit and the key's answer
    commit — and what else the request sent."""
    labels, durable = transactions(queries)
    claim = [sql for sql, label in zip(queries, labels)
             if label == "auto" and shape(sql).startswith("INSERT core_idempotencykey")]
    body = claim + [sql for sql, label in zip(queries, labels) if label == durable]
    return body, [sql for sql in queries if sql not in body]


def main() -> int:
    api_key, escrow_id = sys.argv[1], int(sys.argv[2])
    check = Path(sys.argv[sys.argv.index("--check") + 1]) if "--check" in sys.argv else None

    client = Client(SERVER_NAME="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {api_key}")
    url = f"/api/v1/escrows/{escrow_id}/deposit"

    def deposit():
        return client.post(url, data={"amount": "1.00"}, content_type="application/json",
                           HTTP_IDEMPOTENCY_KEY=f"capture-{uuid.uuid4()}")

    for _ in range(2):  # warm: API-key cache, last_used_at touch, connection setup
        r = deposit()
        assert r.status_code == 200, (r.status_code, r.content)

    with CaptureQueriesContext(connection) as ctx:
        r = deposit()
    assert r.status_code == 200, (r.status_code, r.content)
    queries = [q["sql"] for q in ctx.captured_queries]

    labels, durable = transactions(queries)
    names = {label for label in labels if label != "auto"}
    print(f"# One deposit request: {len(queries)} statements "
          f"({labels.count('auto')} in autocommit, {len(names)} explicit transaction(s)).")
    for i, (sql, label) in enumerate(zip(queries, labels), 1):
        print(f"{i:2d} [{label}] {sql}")

    body, outside = floor_statements(queries)
    print(f"\n# The idempotency claim and the escrow_deposit transaction ({durable}): {len(body)} statements")
    app_shape = [shape(s) for s in body]
    for s, sql in zip(app_shape, body):
        print(f"  {s:40s} | {sql[:150]}")
    print(f"# Sent by the request outside them (not in the floor): {len(outside)}"
          + "".join(f"\n  {shape(sql):40s} | {sql[:150]}" for sql in outside))

    if check is not None:
        bench_shape = script_shape(check)
        print(f"\n# Shape of {check}:")
        print("  " + ", ".join(bench_shape))
        print("# Shape of the app's transaction:")
        print("  " + ", ".join(app_shape))
        print("shape: MATCH" if bench_shape == app_shape else "shape: DIFFERS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
