"""Dependency vulnerabilities (pip-audit) and static security analysis
(bandit), checked on every `make test` (issue #18).

pip-audit needs a vulnerability service (pypi.org's JSON API or OSV). Where
it cannot be reached — this sandbox has a package mirror but no route to
either — the audit is not performed and the test SKIPS, saying so in the
run's summary; it never passes silently. Set KOBATELA_REQUIRE_DEP_AUDIT=1 (a
CI job with network) to make an unreachable service a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["kobatela", "escrow", "payments", "proofs", "spend", "webhooks"]

sys.path.insert(0, str(ROOT / "scripts"))
from audit_dependencies import judge  # noqa: E402


def _dep(name, vulns=(), skip=None):
    dep = {"name": name, "version": "1.0"}
    if skip:
        dep["skip_reason"] = skip
    else:
        dep["vulns"] = list(vulns)
    return dep


def test_the_audit_judgement_fails_on_a_fixable_vulnerability_and_never_on_nothing_audited():
    fixable = {"id": "GHSA-xxxx", "fix_versions": ["1.1"]}
    unfixed = {"id": "PYSEC-yyyy", "fix_versions": []}
    assert judge({"dependencies": [_dep("a", [fixable]), _dep("b")]})[0] == 1
    status, lines = judge({"dependencies": [_dep("a", [unfixed]), _dep("b")]})
    assert status == 0 and any("no fix yet" in line for line in lines)
    assert judge({"dependencies": [_dep("a", skip="Dependency not found on PyPI")]})[0] == 2
    assert judge({"dependencies": []})[0] == 2
    assert judge({"dependencies": [_dep("a"), _dep("b")]})[0] == 0


@pytest.mark.slow
def test_no_pinned_requirement_has_a_known_vulnerability_with_a_fix():
    done = subprocess.run([sys.executable, "scripts/audit_dependencies.py"], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    print(done.stdout[-3000:])
    if done.returncode == 2 and os.environ.get("KOBATELA_REQUIRE_DEP_AUDIT") != "1":
        pytest.skip("dependency audit NOT performed: the vulnerability service is unreachable from here "
                    "(run scripts/audit_dependencies.py where it is; README 'Dependencies and why')")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


@pytest.mark.slow
def test_bandit_finds_no_high_severity_issue_in_the_source():
    done = subprocess.run([sys.executable, "-m", "bandit", "-q", "-r", *SOURCES, "--severity-level", "high",
                           "--exclude", "*/migrations/*", "-f", "txt"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
