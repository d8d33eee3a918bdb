#!/usr/bin/env python3
"""Known vulnerabilities in the pinned requirements (pip-audit), judged honestly.

    .venv/bin/python scripts/audit_dependencies.py [--service pypi|osv] [--json-report FILE]

Runs ``pip-audit -r requirements.txt -r requirements-dev.txt --no-deps
--disable-pip`` (every pin is exact, so no resolver and no pip install is
needed) and decides:

* exit 1 — a pinned package has a known vulnerability **with a fixed
  version**: bump the pin (the list is printed);
* exit 0 — every package was audited; vulnerabilities without any fix yet
  are printed as warnings;
* exit 2 — the audit was NOT performed: the vulnerability service
  (pypi.org's JSON API, or api.osv.dev with ``--service osv``) could not be
  reached, or some packages could not be looked up. pip-audit itself then
  says "No known vulnerabilities found" — which is why this wrapper exists.

Offline there is no vulnerability database to read, so there is no offline
audit: run this where the service is reachable (a CI job with network, an
operator's laptop) — see README "Dependencies and why".
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ("requirements.txt", "requirements-dev.txt")


def judge(report: dict) -> tuple[int, list[str]]:
    """(exit status, lines to print) for a pip-audit JSON report."""
    fixable, unfixed, skipped = [], [], []
    for dep in report.get("dependencies", []):
        if dep.get("skip_reason"):
            skipped.append(f"{dep['name']}: {dep['skip_reason']}")
            continue
        for vuln in dep.get("vulns", []):
            line = f"{dep['name']}=={dep['version']}: {vuln['id']} (fixed in: {', '.join(vuln.get('fix_versions') or []) or 'no fix yet'})"
            (fixable if vuln.get("fix_versions") else unfixed).append(line)
    lines = [f"VULNERABLE, a fix exists: {x}" for x in fixable] + [f"warning, no fix yet: {x}" for x in unfixed]
    if fixable:
        return 1, lines
    if skipped or not report.get("dependencies"):
        return 2, lines + [f"NOT AUDITED: {x}" for x in skipped] + [
            "dependency audit NOT performed: the vulnerability service could not be reached for these packages"]
    return 0, lines + [f"dependency audit: {len(report['dependencies'])} pinned packages, no fixable vulnerability"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", choices=("pypi", "osv"), default="pypi")
    parser.add_argument("--json-report", help="also keep pip-audit's JSON report here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.json_report or Path(tmp) / "audit.json")
        argv = [sys.executable, "-m", "pip_audit", "--no-deps", "--disable-pip", "--progress-spinner", "off",
                "--vulnerability-service", args.service, "--format", "json", "--output", str(out)]
        for requirements in REQUIREMENTS:
            argv += ["-r", str(ROOT / requirements)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)  # nosec B603 (our own argv)
        try:
            report = json.loads(out.read_text())
        except (OSError, ValueError):
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            print(f"dependency audit NOT performed: pip-audit produced no report ({tail})")
            return 2
    status, lines = judge(report)
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
