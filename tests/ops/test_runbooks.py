"""Every command in the runbooks (docs/operations/*.md, fenced ``sh`` blocks)
exists and is spelled as its program expects (issue #18):

* ``python manage.py <command> …`` — a command ``manage.py help`` lists, and
  every ``--option`` used is one its ``--help`` shows;
* ``bash scripts/….sh`` / ``python scripts/….py`` — on disk, ``--help`` runs;
* ``celery -A kobatela <sub> …`` — ``<sub> --help`` runs, options known;
* ``psql … -c "<SQL>"`` — the SQL is valid against the real schema
  (``EXPLAIN`` on the test database, placeholders ``<…>`` read as 0);
* anything else — a program present on this machine.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class
from django.db import connection, transaction

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = sorted((ROOT / "docs" / "operations").glob("*.md"))
INCIDENTS = {"reconcile-mismatch", "audit-chain-broken", "psp-webhook-secret-rotation", "psp-outage", "redis-outage",
             "database-failover-restore", "stuck-or-failed-payouts", "ai-provider-outage-or-cost-spike",
             "disputes-or-refunds-stuck"}
OTHER_PROGRAMS = {"curl", "jq", "grep", "psql", "pg_isready", "createdb", "redis-cli"}
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")


def commands() -> list[tuple[str, str]]:
    """(page, command line) of every command in a fenced sh block."""
    found = []
    for page in RUNBOOKS:
        in_block = False
        for line in page.read_text().splitlines():
            if line.startswith("```"):
                in_block = line.strip() == "```sh" if not in_block else False
                continue
            if in_block and line.strip() and not line.lstrip().startswith("#"):
                found.append((page.name, line.strip()))
    return found


def _argv(segment: str) -> list[str]:
    argv = shlex.split(segment)
    while argv and ASSIGNMENT.match(argv[0]):
        argv.pop(0)  # VAR=value prefixes
    return argv


@lru_cache
def _help(argv: tuple[str, ...]) -> str:
    done = subprocess.run([*argv, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(argv)} --help: {done.stderr[-1000:]}"
    return done.stdout


def _options(args: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


def _check_manage(args: list[str]) -> None:
    name, rest = args[0], args[1:]
    assert name in get_commands(), f"manage.py has no command {name!r}"
    parser = load_command_class(get_commands()[name], name).create_parser("manage.py", name)
    text = parser.format_help()
    for option in _options(rest):
        assert re.search(rf"{re.escape(option)}\b", text), f"manage.py {name} has no option {option}"


def _check_sql(argv: list[str]) -> None:
    sql = argv[argv.index("-c") + 1]
    sql = re.sub(r"<[^>]+>", "0", sql)
    with transaction.atomic(), connection.cursor() as cursor:  # a savepoint: a bad query leaves the test usable
        cursor.execute("EXPLAIN " + sql)


def check(command: str) -> None:
    for segment in command.split(" | "):
        argv = _argv(segment)
        program = argv[0]
        if program == "python" and argv[1] == "manage.py":
            _check_manage(argv[2:])
        elif program in ("python", "bash") and argv[1].startswith("scripts/"):
            assert (ROOT / argv[1]).is_file(), f"no script {argv[1]}"
            _help((sys.executable if program == "python" else "bash", argv[1]))
        elif program == "celery":
            assert argv[1:3] == ["-A", "kobatela"], command
            text = _help((sys.executable, "-m", "celery", "-A", "kobatela", argv[3]))
            for option in _options(argv[4:]):
                assert option in text, f"celery {argv[3]} has no option {option}"
        else:
            assert program in OTHER_PROGRAMS, f"unexpected program {program!r} (add it to OTHER_PROGRAMS if meant)"
            assert shutil.which(program), f"{program} is not installed here"
            if program == "psql" and "-c" in argv:
                _check_sql(argv)


def test_there_is_one_runbook_per_incident_with_signal_diagnosis_and_safe_actions():
    pages = {p.stem: p.read_text() for p in RUNBOOKS if p.stem != "README"}
    assert INCIDENTS <= set(pages), INCIDENTS - set(pages)
    for name, text in pages.items():
        for heading in ("## Signal", "## Diagnose", "## Safe actions"):
            assert heading in text, f"{name}: no {heading!r}"
    index = (ROOT / "docs" / "operations" / "README.md").read_text()
    assert all(f"({name}.md)" in index for name in INCIDENTS)


@pytest.mark.django_db
@pytest.mark.parametrize("page,command", commands(), ids=lambda v: v[:60] if isinstance(v, str) else v)
def test_every_runbook_command_exists(page, command):
    check(command)


@pytest.mark.django_db
@pytest.mark.parametrize("wrong", [
    "python manage.py no_such_command",
    "python manage.py reconcile --no-such-option",
    "bash scripts/no_such_script.sh",
    'psql "$DATABASE_URL" -c "SELECT no_such_column FROM payments_payment"',
    "celery -A kobatela inspect ping --no-such-option",
    "frobnicate --all",
])
def test_the_check_refuses_a_command_that_does_not_exist(wrong):
    from django.db import DatabaseError

    with pytest.raises((AssertionError, DatabaseError)):
        check(wrong)
