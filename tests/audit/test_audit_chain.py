"""The sealed audit chain: lock-free append, sealing in order, signed checkpoints
outside the database, tampering found with its range, and the application
role refused by PostgreSQL where the superuser is not."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from kobatela.audit import chain, checkpoints
from kobatela.audit import services as audit
from kobatela.audit.models import AuditCheckpoint, AuditLog, AuditSeal
from kobatela.core import roles
from payments.models import LedgerEntry
from tests.support.observed_stack import total
from tests.support.pg_roles import connect_as, superuser, superuser_name

pytestmark = pytest.mark.django_db

AUDIT_TABLES = ("audit_auditlog", "audit_auditseal", "audit_auditcheckpoint")


def _history(*batches: int) -> list[AuditLog]:
    """Audited actions in batches, each batch sealed and checkpointed."""
    rows: list[AuditLog] = []
    for size in batches:
        rows += [audit.record("system:test", "thing.done", ("thing", len(rows) + i), {"n": len(rows) + i})
                 for i in range(size)]
        assert audit.audit_seal().checkpoint is not None
    return rows


def _as_insider(*statements: tuple[str, list]) -> None:
    """What a database superuser can do: triggers off for the session, then anything."""
    with superuser() as raw:
        raw.execute("SET session_replication_role = replica")
        for sql, params in statements:
            raw.execute(sql, params)


def _problems(kind: str) -> list[chain.Problem]:
    return [p for p in audit.audit_chain_verify().problems if p.kind == kind]


def _verify_command_fails() -> str:
    err = StringIO()
    with pytest.raises(CommandError, match="BROKEN"):
        call_command("verify_audit_chain", stdout=StringIO(), stderr=err)
    return err.getvalue()


# -- append and seal ------------------------------------------------------------------------

def test_record_is_one_insert_and_takes_no_lock():
    with CaptureQueriesContext(connection) as queries:
        audit.record("apikey:1", "escrow.read", ("escrow.escrowagreement", 7), {})
    assert len(queries) == 1
    assert queries[0]["sql"].startswith('INSERT INTO "audit_auditlog"')
    assert "lock" not in queries[0]["sql"].lower()


def test_seal_writes_a_signed_checkpoint_outside_the_database(checkpoint_dir):
    rows = _history(3)
    cp = AuditCheckpoint.objects.get()
    assert (cp.last_seq, cp.row_count) == (rows[-1].pk, 3)
    assert cp.head_hash == AuditSeal.objects.get(seq=rows[-1].pk).row_hash
    files = list(checkpoint_dir.rglob("*.json"))
    assert [str(f.relative_to(checkpoint_dir)) for f in files] == [cp.external_name]
    document = json.loads(files[0].read_text())
    assert document["signature"] == cp.signature and document["payload"] == cp.payload
    # Verified with the public key alone, as an auditor would.
    key = checkpoints.parse_public_key(document["public_key"])
    signed = checkpoints.parse_document(document, {checkpoints.key_id_of(key): key})
    assert (signed.last_seq, signed.head_hash, signed.row_count) == (cp.last_seq, cp.head_hash, 3)
    # Nothing new: no new checkpoint.
    assert audit.audit_seal().checkpoint is None
    assert audit.audit_chain_verify().ok


def test_a_forged_checkpoint_is_refused(checkpoint_dir, tmp_path):
    _history(2)
    [path] = checkpoint_dir.rglob("*.json")
    document = json.loads(path.read_text())
    payload = json.loads(document["payload"])
    payload["row_count"] = 1
    document["payload"] = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    with pytest.raises(CommandError, match="bad signature"):
        call_command("audit_checkpoint", "--verify", str(forged), stdout=StringIO())
    path.write_text(json.dumps(document))
    assert [p.kind for p in audit.audit_chain_verify().problems] == ["checkpoint_invalid"]


def test_commands_for_auditors_and_backups():
    rows = _history(2)
    out = StringIO()
    call_command("audit_checkpoint", "--latest", stdout=out)
    latest = json.loads(out.getvalue())
    assert latest["verified"] is True and latest["checkpoint"]["last_seq"] == rows[-1].pk
    out = StringIO()
    call_command("audit_public_key", stdout=out)
    assert latest["key_id"] in out.getvalue() and "BEGIN PUBLIC KEY" in out.getvalue()
    call_command("audit_checkpoint", "--latest", "--public-key", latest["public_key"], stdout=StringIO())
    out = StringIO()
    call_command("seal_audit_log", stdout=out)
    assert "Sealed 0 rows" in out.getvalue()
    out = StringIO()
    call_command("verify_audit_chain", "--days", "1", stdout=out)
    assert "Audit chain OK: 2 sealed rows" in out.getvalue() and "1 signed checkpoints" in out.getvalue()


def test_seal_lag_gauge_and_health_section(admin_api):
    audit.record("system:test", "thing.done", ("thing", 1), {})
    audit.record("system:test", "thing.done", ("thing", 2), {})
    section = chain.lag()
    assert section["unsealed_rows"] >= 2 and section["lag_seconds"] >= 0
    page = _scrape()  # computed at the scrape from chain.lag(), not left behind by the last sealer run
    assert total(page, "kobatela_audit_unsealed_rows") == section["unsealed_rows"]
    assert total(page, "kobatela_audit_seal_lag_seconds") >= section["lag_seconds"]
    audit.audit_seal()
    body = admin_api.get("/health").json()
    assert body["audit_seal"]["unsealed_rows"] == 0
    assert body["audit_seal"]["sealed_up_to"] == AuditLog.objects.order_by("-pk").first().pk
    page = _scrape()
    assert total(page, "kobatela_audit_seal_lag_seconds") == 0 and total(page, "kobatela_audit_unsealed_rows") == 0


def _scrape() -> str:
    response = Client(REMOTE_ADDR="127.0.0.1").get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


# -- tampering as the superuser: found, with the range --------------------------------------

@pytest.mark.django_db(transaction=True)
def test_deleted_tail_is_reported_with_its_range():
    rows = _history(5, 3)
    kept, gone = rows[4].pk, [r.pk for r in rows[5:]]
    _as_insider(("DELETE FROM audit_auditlog WHERE id > %s", [kept]),
                ("DELETE FROM audit_auditseal WHERE seq > %s", [kept]),
                ("DELETE FROM audit_auditcheckpoint WHERE last_seq > %s", [kept]))
    [problem] = _problems("tail_removed")
    assert (problem.first_seq, problem.last_seq) == (kept + 1, gone[-1])
    assert "3 sealed rows removed" in problem.message
    assert f"seq {kept + 1}..{gone[-1]}" in _verify_command_fails()


@pytest.mark.django_db(transaction=True)
def test_deleted_rows_under_their_seals_are_reported():
    rows = _history(4)
    _as_insider(("DELETE FROM audit_auditlog WHERE id >= %s", [rows[2].pk]))
    [problem] = _problems("rows_missing")
    assert (problem.first_seq, problem.last_seq) == (rows[2].pk, rows[3].pk)


@pytest.mark.django_db(transaction=True)
def test_rewritten_last_row_with_recomputed_hash_is_reported():
    rows = _history(5, 1)
    last = rows[-1]
    forged = AuditLog.objects.get(pk=last.pk)
    forged.data = {"n": 999}
    prev = AuditSeal.objects.get(seq=rows[-2].pk).row_hash
    _as_insider(("UPDATE audit_auditlog SET data = %s WHERE id = %s", [json.dumps(forged.data), last.pk]),
                ("UPDATE audit_auditseal SET row_hash = %s WHERE seq = %s",
                 [chain.compute_row_hash(prev, forged), last.pk]))
    report = audit.audit_chain_verify()
    assert [p.kind for p in report.problems] == ["checkpoint_mismatch"]  # the chain itself is consistent again
    assert (report.problems[0].first_seq, report.problems[0].last_seq) == (last.pk, last.pk)
    # And the sealer refuses to extend a chain that lost its own last checkpoint.
    audit.record("system:test", "thing.done", ("thing", 99), {})
    assert audit.audit_seal().refused


@pytest.mark.django_db(transaction=True)
def test_truncated_tables_are_reported():
    rows = _history(3, 2)
    _as_insider((f"TRUNCATE {', '.join(AUDIT_TABLES)}", []))
    [problem] = _problems("table_emptied")
    assert (problem.first_seq, problem.last_seq) == (1, rows[-1].pk)
    assert "5 sealed rows removed" in problem.message


@pytest.mark.django_db(transaction=True)
def test_rewound_sequence_is_reported():
    rows = _history(4)
    _as_insider(("SELECT setval(pg_get_serial_sequence('audit_auditlog', 'id'), %s)", [rows[1].pk]))
    [problem] = _problems("sequence_rewound")
    assert (problem.first_seq, problem.last_seq) == (rows[1].pk + 1, rows[-1].pk)


@pytest.mark.django_db(transaction=True)
def test_row_inserted_out_of_sequence_is_reported_and_never_sealed():
    _history(2)
    with pytest.raises(RuntimeError), transaction.atomic():  # a rolled-back action leaves an unused id
        gap = audit.record("system:test", "thing.done", ("thing", "rolled back"), {}).pk
        raise RuntimeError
    rows = _history(2)
    assert AuditSeal.objects.filter(seq=gap).count() == 0 and audit.audit_chain_verify().ok
    _as_insider(("INSERT INTO audit_auditlog (id, created_at, actor, action, entity_type, entity_id, data, request_id)"
                 " VALUES (%s, now() - interval '1 day', 'staff:1', 'escrow.approved', 'escrow', '1', '{}', '')",
                 [gap]))
    assert audit.audit_seal().sealed == 0
    [problem] = _problems("inserted_out_of_sequence")
    assert (problem.first_seq, problem.last_seq) == (gap, gap) and gap < rows[-1].pk


# -- the same tampering as the application role: refused by PostgreSQL ---------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("table", [*AUDIT_TABLES, LedgerEntry._meta.db_table])
def test_application_role_cannot_change_append_only_tables(table):
    audit.record("system:test", "thing.done", ("thing", 1), {})
    audit.audit_seal()
    app_user = connection.settings_dict["USER"]
    assert app_user == "kobatela_app"
    for sql in (f"UPDATE {table} SET id = id" if table != "audit_auditseal" else f"UPDATE {table} SET seq = seq",
                f"DELETE FROM {table}", f"TRUNCATE {table}", f"ALTER TABLE {table} DISABLE TRIGGER USER",
                "SET session_replication_role = replica",
                "SELECT setval(pg_get_serial_sequence('audit_auditlog', 'id'), 1)"):
        with connect_as(app_user) as raw, pytest.raises(psycopg.errors.InsufficientPrivilege):
            raw.execute(sql)
    assert roles.privilege_problems() == []


@pytest.mark.django_db(transaction=True)
def test_tables_created_later_get_normal_privileges_and_the_owner_is_flagged():
    owner = roles.owner_credentials()["USER"]
    with connect_as(owner) as raw:
        raw.execute("CREATE TABLE later_feature (id bigserial PRIMARY KEY, note text)")
    try:
        with connect_as(connection.settings_dict["USER"]) as raw:
            raw.execute("INSERT INTO later_feature (note) VALUES ('a')")
            raw.execute("UPDATE later_feature SET note = 'b'")
            raw.execute("DELETE FROM later_feature")
        with roles.as_owner():
            assert any("owns" in p for p in roles.privilege_problems())
    finally:
        with connect_as(owner) as raw:
            raw.execute("DROP TABLE later_feature")


# -- sealing under load ---------------------------------------------------------------------------

class _Sealer(threading.Thread):
    def __init__(self, interval: float):
        super().__init__(daemon=True)
        self.interval, self.stop, self.runs, self.error = interval, threading.Event(), 0, None

    def run(self):
        try:
            while not self.stop.is_set():
                audit.audit_seal()
                self.runs += 1
                self.stop.wait(self.interval)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            connection.close()


@pytest.mark.django_db(transaction=True)
def test_twenty_threads_audit_while_the_sealer_runs():
    barrier = threading.Barrier(20)

    def write(i):
        try:
            barrier.wait()
            for j in range(30):
                if j % 10 == 9:  # some actions roll back: their ids are never used
                    with pytest.raises(RuntimeError), transaction.atomic():
                        audit.record("system:test", "thing.failed", ("thing", i), {"i": i, "j": j})
                        raise RuntimeError
                else:
                    with transaction.atomic():
                        audit.record("system:test", "thing.done", ("thing", i), {"i": i, "j": j})
                time.sleep(0.005)
        finally:
            connection.close()

    sealer = _Sealer(interval=0.05)
    sealer.start()
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(write, range(20)))
    sealed_while_writing = AuditSeal.objects.count()
    sealer.stop.set()
    sealer.join(30)
    assert sealer.error is None and sealed_while_writing > 0
    audit.audit_seal()
    ids = list(AuditLog.objects.order_by("pk").values_list("pk", flat=True))
    assert len(ids) == 20 * 27
    assert list(AuditSeal.objects.order_by("seq").values_list("seq", flat=True)) == ids  # complete, in order
    report = audit.audit_chain_verify()
    assert report.ok and report.checked == len(ids) and report.unsealed == 0


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_ten_thousand_actions_is_sealed_within_thirty_seconds():
    sealer = _Sealer(interval=5.0)  # the beat schedule's default (AUDIT_SEAL_INTERVAL_SECONDS)
    sealer.start()

    def write(i):
        try:
            for j in range(2500):
                audit.record("apikey:1", "escrow.read", ("escrow.escrowagreement", i), {"j": j})
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))
    burst_end = time.monotonic()
    last = AuditLog.objects.order_by("-pk").values_list("pk", flat=True).first()
    while not AuditSeal.objects.filter(seq=last).exists():
        assert time.monotonic() - burst_end < 30, "the burst was not sealed within 30 s"
        time.sleep(0.1)
    sealed_after = time.monotonic() - burst_end
    sealer.stop.set()
    sealer.join(60)
    assert sealer.error is None
    assert AuditSeal.objects.count() == AuditLog.objects.count() >= 10_000
    print(f"10,000 audited actions sealed {sealed_after:.1f} s after the burst")


@pytest.mark.django_db(transaction=True)
def test_the_seal_migration_goes_back_and_forth_with_rows():
    """Back: the in-row hashes of the old chain are recomputed; forth: the rows are sealed again."""
    rows = _history(3)
    call_command("migrate", "audit", "0002", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_auditlog WHERE row_hash IS NOT NULL AND prev_hash IS NOT NULL")
        assert cursor.fetchone()[0] == len(rows)
    call_command("migrate", "audit", verbosity=0)
    assert audit.audit_seal().sealed == len(rows)
    assert audit.audit_chain_verify(external=False).ok


# -- the S3 sink (django-storages against moto), with Object Lock ------------------------------

@pytest.fixture
def s3_checkpoints(settings):
    import subprocess
    import sys

    import boto3

    from tests.support.ports import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(Bucket="audit-checkpoints", ObjectLockEnabledForBucket=True)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    settings.AUDIT_CHECKPOINT_OBJECT_LOCK_DAYS = 30
    settings.STORAGES = {**settings.STORAGES, "audit_checkpoints": {
        "BACKEND": "kobatela.audit.checkpoints.CheckpointS3Storage",
        "OPTIONS": {"bucket_name": "audit-checkpoints", "endpoint_url": endpoint, "access_key": "testing",
                    "secret_key": "testing", "region_name": "us-east-1", "default_acl": None,
                    "file_overwrite": False}}}
    try:
        yield client
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_checkpoints_go_to_s3_under_object_lock(s3_checkpoints):
    rows = _history(2, 1)
    cp = AuditCheckpoint.objects.order_by("-id").first()
    head = s3_checkpoints.head_object(Bucket="audit-checkpoints", Key=cp.external_name)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    with pytest.raises(Exception, match="AccessDenied|locked|WORM|retention"):
        versions = s3_checkpoints.list_object_versions(Bucket="audit-checkpoints", Prefix=cp.external_name)
        s3_checkpoints.delete_object(Bucket="audit-checkpoints", Key=cp.external_name,
                                     VersionId=versions["Versions"][0]["VersionId"])
    assert checkpoints.latest_external_name() == cp.external_name
    report = audit.audit_chain_verify()
    assert report.ok and report.checkpoints_checked == 2 and report.latest_checkpoint.last_seq == rows[-1].pk


@pytest.mark.django_db(transaction=True)
def test_production_start_warns_when_connected_as_owner_or_superuser(settings):
    from kobatela.core.checks import database_role_check

    settings.IS_PRODUCTION = True
    assert database_role_check(None) == []  # the application role
    with roles.as_owner():
        [warning] = database_role_check(None)
    assert warning.id == "kobatela.W010" and "owns" in warning.msg
    with roles.connected_as({"USER": superuser_name()}):
        assert any("superuser" in w.msg for w in database_role_check(None))


@pytest.mark.django_db(transaction=True)
def test_a_restore_reads_the_rows_written_after_the_backup_as_the_lost_range(tmp_path):
    """What ``restore.sh --verify`` meets on a real restore (docs/operations/database-failover-restore.md):
    the external sink kept the checkpoints written after the backup, so the rows they cover and the
    restored copy lacks are ``tail_removed`` (the RPO, made visible) and the restored id sequence is
    behind them (``sequence_rewound``); against the backup's own checkpoint the copy is whole."""
    rows = _history(5)
    out = StringIO()
    call_command("audit_checkpoint", "--latest", stdout=out)  # what scripts/backup.sh keeps
    backup_checkpoint = tmp_path / "audit-checkpoint.json"
    backup_checkpoint.write_text(out.getvalue())
    lost = _history(3)  # written, sealed and checkpointed outside after the backup
    kept = rows[-1].pk
    _as_insider(("DELETE FROM audit_auditlog WHERE id > %s", [kept]),  # the restored copy: the backup's state
                ("DELETE FROM audit_auditseal WHERE seq > %s", [kept]),
                ("DELETE FROM audit_auditcheckpoint WHERE last_seq > %s", [kept]),
                ("SELECT setval(pg_get_serial_sequence('audit_auditlog', 'id'), %s)", [kept]))
    report = audit.audit_chain_verify(documents=[("backup", json.loads(backup_checkpoint.read_text()))])
    found = {p.kind: (p.first_seq, p.last_seq) for p in report.problems}
    assert found == {"tail_removed": (kept + 1, lost[-1].pk), "sequence_rewound": (kept + 1, lost[-1].pk)}
    err = StringIO()
    with pytest.raises(CommandError, match="BROKEN"):
        call_command("verify_audit_chain", "--checkpoint", str(backup_checkpoint), stdout=StringIO(), stderr=err)
    assert f"[tail_removed] seq {kept + 1}..{lost[-1].pk}" in err.getvalue()
    out = StringIO()  # the copy itself is whole up to the backup's checkpoint
    call_command("verify_audit_chain", "--no-external", "--checkpoint", str(backup_checkpoint), stdout=out)
    assert f"Audit chain OK: 5 sealed rows (up to seq {kept})" in out.getvalue()
