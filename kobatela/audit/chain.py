"""The audit chain: sealing (the periodic job) and verification.

Request paths only INSERT audit rows (``services.record``); their ids come
from a sequence. The sealing job, one runner at a time
(``core.locks.periodic_job``), takes the unsealed rows in id order, chains
them — each row's hash covers its content and the previous row's hash — and
INSERTs the hashes into ``AuditSeal``; then it writes a signed checkpoint
(``checkpoints``) to the database and to the external sink. Nothing on the
request path waits for it.

Rows commit out of id order (two requests take ids 7 and 8; 8 commits
first), and ids of rolled-back transactions are never used. The sealer
therefore seals at once only a run of consecutive ids following the head.
At a gap it notes which other sessions are writing audit rows right now
(they hold ROW EXCLUSIVE on the table from before they draw an id until they
end), waits for those to end, and reads again: an id below a row it had
already seen is then either committed (sealed in order) or rolled back for
good (skipped). So the sealed chain is in id order with no row left behind,
and an unsealed row below the head can only be an insertion made behind the
application's back (reported by ``audit_chain_verify``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from kobatela.audit import checkpoints
from kobatela.audit.models import AuditCheckpoint, AuditLog, AuditSeal
from kobatela.core.locks import periodic_job

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
SEAL_JOB = "audit_seal"
SEAL_BATCH_ROWS = 5000
GAP_WAIT_SECONDS = 5.0
_CHUNK = 5000

def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)


def compute_row_hash(prev_hash: str, row: AuditLog) -> str:
    payload = canonical_json([prev_hash, row.pk, row.created_at.isoformat(), row.actor, row.action, row.entity_type,
                          row.entity_id, row.data, row.request_id])
    return hashlib.sha256(payload.encode()).hexdigest()


def _head() -> tuple[int, str]:
    head = AuditSeal.objects.order_by("-seq").values_list("seq", "row_hash").first()
    return head if head else (0, GENESIS_HASH)


# -- sealing ----------------------------------------------------------------------------

def _audit_writers() -> set[tuple[int, str]]:
    """The other sessions of this database in a transaction that is writing audit rows."""
    if connection.vendor != "postgresql":
        return set()  # SQLite: one writer at a time, ids in commit order
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, virtualtransaction FROM pg_locks WHERE locktype = 'relation' AND mode = 'RowExclusiveLock'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND relation = %s::regclass AND pid <> pg_backend_pid()", [AuditLog._meta.db_table])
        return set(cursor.fetchall())


def _wait_for_writers(writers: set[tuple[int, str]], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while writers:
        writers &= _audit_writers()
        if not writers:
            break
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _seal_batch(limit: int, gap_wait_seconds: float) -> tuple[int, bool]:
    """Seal up to ``limit`` rows after the head; (rows sealed, stopped at an unresolved gap)."""
    head_seq, head_hash = _head()
    ids = list(AuditLog.objects.filter(pk__gt=head_seq).order_by("pk").values_list("pk", flat=True)[:limit])
    if not ids:
        return 0, False
    upto = ids[-1]
    contiguous = next((i for i, pk in enumerate(ids) if pk != head_seq + 1 + i), len(ids))
    if contiguous < len(ids):
        if contiguous > 0:
            upto = ids[contiguous - 1]  # the run before the gap now; the gap on the next batch
        elif not _wait_for_writers(_audit_writers(), gap_wait_seconds):
            logger.warning("audit sealing waits on a transaction still writing audit rows",
                           extra={"after_seq": head_seq})
            return 0, True
        # else: every id below ids[-1] is now committed or rolled back for good
    with transaction.atomic():
        rows = list(AuditLog.objects.filter(pk__gt=head_seq, pk__lte=upto).order_by("pk"))
        prev, seqs, hashes = head_hash, [], []
        for row in rows:
            prev = compute_row_hash(prev, row)
            seqs.append(row.pk)
            hashes.append(prev)
        _insert_seals(seqs, hashes, timezone.now())
    return len(rows), False


def _insert_seals(seqs: list[int], hashes: list[str], at) -> None:
    if not seqs:
        return
    if connection.vendor == "postgresql":  # one statement, whatever the batch size
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {AuditSeal._meta.db_table} (seq, row_hash, sealed_at) "
                           "SELECT s, h, %s FROM unnest(%s::bigint[], %s::text[]) AS t(s, h)", [at, seqs, hashes])
    else:
        AuditSeal.objects.bulk_create([AuditSeal(seq=s, row_hash=h, sealed_at=at) for s, h in zip(seqs, hashes)])


@dataclass(frozen=True)
class SealResult:
    sealed: int
    head_seq: int
    checkpoint: AuditCheckpoint | None = None
    skipped: bool = False           # another sealer holds the job's lock
    refused: str | None = None      # the chain no longer continues the last checkpoint
    checkpoint_error: str | None = None


def _continuity_problem() -> str | None:
    """The sealer refuses to extend a chain that no longer holds its own last checkpoint."""
    last = AuditCheckpoint.objects.order_by("-id").first()
    if last is None:
        return None
    seal = AuditSeal.objects.filter(seq=last.last_seq).values_list("row_hash", flat=True).first()
    if seal != last.head_hash:
        return (f"the sealed chain no longer holds checkpoint #{last.pk} (seq {last.last_seq}): "
                "run manage.py verify_audit_chain")
    return None


def _row_count(head_seq: int, last: AuditCheckpoint | None) -> int:
    if last is not None and last.last_seq <= head_seq:
        return last.row_count + AuditSeal.objects.filter(seq__gt=last.last_seq).count()
    return AuditSeal.objects.count()


def write_checkpoint() -> AuditCheckpoint | None:
    """Sign where the chain ends now, write it outside the database (and log it), then
    keep a copy in the table; nothing to do when the last checkpoint already says so."""
    head_seq, head_hash = _head()
    last = AuditCheckpoint.objects.order_by("-id").first()
    if head_seq == 0 or (last is not None and last.last_seq == head_seq and last.head_hash == head_hash):
        return None
    at = timezone.now()
    signed = checkpoints.sign(last_seq=head_seq, head_hash=head_hash, row_count=_row_count(head_seq, last), at=at)
    name = checkpoints.write_external(signed, at)
    return AuditCheckpoint.objects.create(
        last_seq=signed.last_seq, head_hash=signed.head_hash, row_count=signed.row_count, created_at=at,
        key_id=signed.key_id, payload=signed.payload, signature=signed.signature, external_name=name)


def audit_seal(*, batch_rows: int = SEAL_BATCH_ROWS, gap_wait_seconds: float = GAP_WAIT_SECONDS) -> SealResult:
    """Seal every audit row that can be sealed now, then checkpoint. One runner at a time."""
    with periodic_job(SEAL_JOB) as acquired:
        if not acquired:
            return SealResult(0, _head()[0], skipped=True)
        problem = _continuity_problem()
        if problem:
            logger.error("audit sealing refused", extra={"reason": problem})
            return SealResult(0, _head()[0], refused=problem)
        sealed = 0
        while True:
            count, blocked = _seal_batch(batch_rows, gap_wait_seconds)
            sealed += count
            if blocked or count == 0:
                break
        checkpoint, error = None, None
        try:
            checkpoint = write_checkpoint()
        except ImproperlyConfigured as exc:
            error = str(exc)
            logger.error("audit checkpoint not written", extra={"reason": error})
        except Exception as exc:  # the sink is down: the seals stand, the next run writes the checkpoint
            error = f"{type(exc).__name__}: {exc}"
            logger.exception("audit checkpoint not written", extra={"reason": error})
        return SealResult(sealed, _head()[0], checkpoint, checkpoint_error=error)


def lag() -> dict:
    """How far sealing is behind: the detailed /health's ``audit_seal`` section and, at each
    scrape, the ``kobatela_audit_*`` gauges of /metrics (``kobatela.audit.metrics``)."""
    head_seq, _ = _head()
    oldest = AuditLog.objects.filter(pk__gt=head_seq).order_by("pk").values_list("created_at", flat=True).first()
    unsealed = AuditLog.objects.filter(pk__gt=head_seq).count() if oldest else 0
    seconds = max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0
    last = AuditCheckpoint.objects.order_by("-id").values("last_seq", "created_at").first()
    return {"lag_seconds": round(seconds, 3), "unsealed_rows": unsealed, "sealed_up_to": head_seq,
            "last_checkpoint_seq": last["last_seq"] if last else None,
            "last_checkpoint_at": last["created_at"].isoformat() if last else None}


# -- verification ------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    kind: str
    first_seq: int | None
    last_seq: int | None
    message: str

    def __str__(self) -> str:
        span = "" if self.first_seq is None else (
            f"seq {self.first_seq}" if self.first_seq == self.last_seq else f"seq {self.first_seq}..{self.last_seq}")
        return f"[{self.kind}] {span + ': ' if span else ''}{self.message}"


@dataclass
class ChainReport:
    checked: int = 0
    head_seq: int = 0
    unsealed: int = 0
    checkpoints_checked: int = 0
    latest_checkpoint: checkpoints.SignedCheckpoint | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_broken_id(self) -> int | None:
        return self.problems[0].first_seq if self.problems else None

    @property
    def reason(self) -> str | None:
        return str(self.problems[0]) if self.problems else None


def _ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for seq in seqs:
        if out and seq == out[-1][1] + 1:
            out[-1][1] = seq
        else:
            out.append([seq, seq])
    return [(a, b) for a, b in out]


def _walk(report: ChainReport, wanted: set[int]) -> dict[int, tuple[str, int]]:
    """Check every seal against its row and its predecessor; return (hash, count) at the ``wanted`` seqs."""
    at: dict[int, tuple[str, int]] = {}
    prev, after, missing = GENESIS_HASH, 0, []
    while True:
        seals = list(AuditSeal.objects.filter(seq__gt=after).order_by("seq").values_list("seq", "row_hash")[:_CHUNK])
        if not seals:
            break
        rows = AuditLog.objects.in_bulk([seq for seq, _ in seals])
        for seq, row_hash in seals:
            report.checked += 1
            row = rows.get(seq)
            if row is None:
                missing.append(seq)
            elif compute_row_hash(prev, row) != row_hash:
                report.problems.append(Problem("row_changed", seq, seq,
                                               "the row (or the seal before it) no longer matches its seal"))
            prev = row_hash
            if seq in wanted:
                at[seq] = (row_hash, report.checked)
        after = seals[-1][0]
    report.head_seq = after
    for a, b in _ranges(missing):
        report.problems.append(Problem("rows_missing", a, b, f"sealed audit rows are gone ({b - a + 1} ids)"))
    return at


def _sequence_value() -> int | None:
    if connection.vendor != "postgresql":
        return None
    table = AuditLog._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        name = cursor.fetchone()[0]
        cursor.execute(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {name}")
        return cursor.fetchone()[0]


def _signed_checkpoints(report: ChainReport, documents: Iterable[tuple[str, dict]]) -> list[checkpoints.SignedCheckpoint]:
    """The checkpoints among ``documents`` ((name, JSON) pairs) whose signature verifies; each
    other one is a ``checkpoint_invalid`` problem."""
    keys = checkpoints.verification_keys()
    found = []
    for name, document in documents:
        try:
            found.append(checkpoints.parse_document(document, keys, name=name))
        except checkpoints.CheckpointInvalid as exc:
            report.problems.append(Problem("checkpoint_invalid", None, None, f"{name}: {exc}"))
    return found


def _external_documents(report: ChainReport, since_day: str | None) -> Iterator[tuple[str, dict]]:
    """The checkpoint documents of the external sink (those written since ``since_day``)."""
    for name in checkpoints.external_names(since_day):
        try:
            yield name, checkpoints.read_external(name)
        except ValueError as exc:
            report.problems.append(Problem("checkpoint_invalid", None, None, f"{name}: not JSON ({exc})"))


def audit_chain_verify(*, external: bool = True, since_day: str | None = None,
                       documents: Iterable[tuple[str, dict]] = ()) -> ChainReport:
    """Check the sealed chain row by row and against every signed checkpoint in the
    external sink (or those written since ``since_day``, YYYY-MM-DD) and the given
    checkpoint ``documents`` ((name, JSON) pairs, e.g. the one a backup carries);
    each problem names the exact range of sequence numbers."""
    report = ChainReport()
    external_found = _signed_checkpoints(report, _external_documents(report, since_day)) if external else []
    report.latest_checkpoint = external_found[-1] if external_found else None
    signed = external_found + _signed_checkpoints(report, documents)
    report.checkpoints_checked = len(signed)
    at = _walk(report, {cp.last_seq for cp in signed})
    head = report.head_seq

    # Rows below the head that the sealer never saw: inserted behind its back.
    intruders = (AuditLog.objects.filter(pk__lte=head).exclude(pk__in=AuditSeal.objects.values("seq"))
                 .order_by("pk").values_list("pk", flat=True))
    for a, b in _ranges(intruders):
        report.problems.append(Problem("inserted_out_of_sequence", a, b,
                                       "unsealed rows below the sealed head (inserted out of sequence)"))
    report.unsealed = AuditLog.objects.filter(pk__gt=head).count()

    # Checked against the signed checkpoints: the first one the chain no longer agrees with…
    good = 0
    for cp in sorted((cp for cp in signed if cp.last_seq <= head), key=lambda cp: (cp.last_seq, cp.created_at)):
        if at.get(cp.last_seq) != (cp.head_hash, cp.row_count):
            report.problems.append(Problem(
                "checkpoint_mismatch", good + 1, cp.last_seq,
                f"the chain differs from the signed checkpoint of {cp.created_at} "
                f"(up to seq {cp.last_seq}, {cp.row_count} rows): rows were changed, removed or added in this range"))
            break
        good = cp.last_seq
    # …and the furthest one: the rows it covers beyond the chain's end were removed.
    furthest = max(signed, key=lambda cp: cp.last_seq, default=None)
    if furthest is not None and furthest.last_seq > head:
        kind = "table_emptied" if head == 0 else "tail_removed"
        report.problems.append(Problem(
            kind, head + 1, furthest.last_seq,
            f"the signed checkpoint of {furthest.created_at} covers rows up to seq {furthest.last_seq} "
            f"({furthest.row_count} rows); the sealed chain ends at seq {head} ({report.checked} rows): "
            f"{furthest.row_count - report.checked} sealed rows removed"))

    # The id sequence must stay ahead of every id ever used.
    current = _sequence_value()
    used = max(head, furthest.last_seq if furthest else 0,
               AuditLog.objects.order_by("-pk").values_list("pk", flat=True).first() or 0)
    if current is not None and current < used:
        report.problems.append(Problem("sequence_rewound", current + 1, used,
                                       f"the id sequence was set back to {current}: ids up to {used} are already used"))
    return report
