"""Read one bench/run.sh result directory and print the results table.

Usage: python3 bench/report.py <results dir>
Reads wrk.txt, pgbench-before.txt and pgbench.txt (the floor measured right
before and right after the deposits; the ratio uses their mean), pgbench_log.*
(per-transaction latencies of the second), meta.env, and, when present,
instructions.txt (``BENCH_INSTRUCTIONS=1``) and shares.txt (``BENCH_SHARES=1``)
from the directory; writes summary.txt next to them and prints it.
Exit status 0 even when a target is missed (the table says FAIL); 1 when
the raw outputs cannot be parsed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

TARGET_RATIO = 0.24  # issue #14: twice the FastAPI prototype (0.12)
TARGET_P99_MS = 50.0  # issue #14, at 16 connections
# BENCH_INSTRUCTIONS=1 make bench on 930a4c2, before the shared statement cursor (bench/README.md "Fourth pass").
REFERENCE_INSTRUCTIONS = {"deposit": 7_930_000, "get": 7_620_000}
# bench/shares.py's variants: each step's share of a deposit's CPU, measured by taking it out.
SHARES = {"metrics": "metrics middleware", "rate_limit": "rate limit (Redis)", "response": "escrow response body",
          "all": "the three at once"}
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {value!r}")
    return float(m.group(1)) * UNITS_MS[m.group(2)]


def parse_wrk(text: str) -> dict:
    out = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "avg": ms(re.search(r"^\s+Latency\s+(\S+)", text, re.M).group(1)),
        "requests": int(re.search(r"(\d+) requests in", text).group(1)),
    }
    for pct in ("50", "75", "90", "99"):
        out[f"p{pct}"] = ms(re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M).group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = sum(map(int, sock.groups())) if sock else 0
    st = re.search(r"bench-statuses: 2xx=(\d+) non2xx=(\d+)", text)
    out["ok"], out["non2xx"] = (int(st.group(1)), int(st.group(2))) if st else (0, -1)
    return out


def parse_pgbench(text: str, logs: list[Path]) -> dict:
    out = {
        "tps": float(re.search(r"tps = ([\d.]+)", text).group(1)),
        "avg": float(re.search(r"latency average = ([\d.]+) ms", text).group(1)),
        "processed": int(re.search(r"number of transactions actually processed: (\d+)", text).group(1)),
    }
    failed = re.search(r"number of failed transactions: (\d+)", text)
    out["failed"] = int(failed.group(1)) if failed else 0
    # --log: "client_id transaction_no time script_no time_epoch time_us", time in µs.
    lat = sorted(int(line.split()[2]) / 1000.0 for f in logs for line in f.read_text().splitlines() if line.strip())
    if lat:
        out["p50"] = lat[len(lat) // 2]
        out["p99"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return out


def _pairs(path: Path) -> dict[str, str]:
    """``name value`` lines (instructions.txt, shares.txt); empty when the run made no such file."""
    return dict(line.split() for line in path.read_text().splitlines() if line.strip()) if path.exists() else {}


def main() -> int:
    res = Path(sys.argv[1])
    meta = dict(line.split("=", 1) for line in (res / "meta.env").read_text().splitlines() if "=" in line)
    try:
        w = parse_wrk((res / "wrk.txt").read_text())
        p = parse_pgbench((res / "pgbench.txt").read_text(), sorted(res.glob("pgbench_log*")))
    except (AttributeError, ValueError, FileNotFoundError) as exc:
        print(f"report: cannot parse the raw outputs in {res}: {exc}", file=sys.stderr)
        return 1
    g = parse_wrk((res / "wrk-get.txt").read_text()) if (res / "wrk-get.txt").exists() else None
    samples = [line.split("|") for line in (res / "pg_locks.txt").read_text().splitlines()
               if line.count("|") == 2] if (res / "pg_locks.txt").exists() else []
    # The floor: the mean of the runs bracketing the deposits (one run in result
    # directories made before the floor was measured twice).
    before_txt = res / "pgbench-before.txt"
    before = parse_pgbench(before_txt.read_text(), []) if before_txt.exists() else None
    floors = [before["tps"], p["tps"]] if before else [p["tps"]]
    floor = sum(floors) / len(floors)
    ratio = w["rps"] / floor if floor else 0.0
    ok = lambda cond: "PASS" if cond else "FAIL"  # noqa: E731
    pg_p99 = f"{p['p99']:.1f} ms" if "p99" in p else "n/a"
    rows = [
        ("deposit req/s (wrk, HTTP)", f"{w['rps']:.1f}", "", ""),
        ("deposit latency p50", f"{w['p50']:.1f} ms", "", ""),
        ("deposit latency p99", f"{w['p99']:.1f} ms", f"< {TARGET_P99_MS:.0f} ms", ok(w["p99"] < TARGET_P99_MS)),
        ("pgbench TPS (same SQL txn)", f"{floor:.1f}", "", ""),
        *([("  before / after the deposits", f"{before['tps']:.1f} / {p['tps']:.1f}", "", "")] if before else []),
        ("pgbench latency avg / p99", f"{p['avg']:.1f} / {pg_p99}", "", ""),
        ("ratio deposit/pgbench", f"{ratio:.3f}", f">= {TARGET_RATIO}", ok(ratio >= TARGET_RATIO)),
    ]
    if 0 < ratio < TARGET_RATIO:  # what the target asks of this run: the deposits a second it lacked
        needed = f"{TARGET_RATIO * floor:.1f} (+{TARGET_RATIO / ratio - 1:.0%})"
        rows.append((f"  deposits needed for {TARGET_RATIO}", needed, "", ""))
    if g is not None:
        rows += [
            ("GET /escrows/{id} req/s (wrk)", f"{g['rps']:.1f}", "", ""),
            ("GET /escrows/{id} p50 / p99", f"{g['p50']:.1f} / {g['p99']:.1f} ms", "", ""),
        ]
    counts = _pairs(res / "instructions.txt")
    for mode, label in (("deposit", "deposit"), ("get", "GET /escrows/{id}")):
        if f"{mode}_instructions" in counts:
            reference = REFERENCE_INSTRUCTIONS[mode]
            rows.append((f"{label} instructions/req", f"{int(counts[f'{mode}_instructions']) / 1e6:.2f} M",
                         f"was {reference / 1e6:.2f} M" if reference else "", ""))
    shares = _pairs(res / "shares.txt")
    if "cpu_ms_per_deposit" in shares:
        rows.append(("deposit CPU, in-process", f"{float(shares['cpu_ms_per_deposit']):.2f} ms", "", ""))
    for step, label in SHARES.items():
        if f"share_{step}" in shares:
            rows.append((f"  share: {label}", f"{float(shares[f'share_{step}']):.1%}", "", ""))
    if samples:
        advisory_waits = max(int(s[1]) for s in samples)
        rows.append(("advisory-lock waits (pg_locks)", f"max {advisory_waits} in {len(samples)} samples", "0",
                     ok(advisory_waits == 0)))
        rows.append(("any lock waits (pg_locks)", f"max {max(int(s[0]) for s in samples)}", "", ""))
    lines = [
        f"Deposit benchmark {meta.get('STAMP', '')}: {meta.get('SECONDS')} s, {meta.get('CONNECTIONS')} connections, "
        f"{meta.get('CORES')} cores, gunicorn {meta.get('WORKERS')} sync workers, {meta.get('ESCROWS')} escrows",
        f"{'metric':30s} {'value':>18s}  {'target':>10s}  result",
    ]
    lines += [f"{name:30s} {value:>18s}  {target:>10s}  {result}" for name, value, target, result in rows]
    lines.append(
        f"requests: {w['requests']} HTTP ({w['ok']} 2xx, {w['non2xx']} non-2xx, {w['socket_errors']} socket errors); "
        f"pgbench: {p['processed'] + (before['processed'] if before else 0)} txns "
        f"({p['failed'] + (before['failed'] if before else 0)} failed); SQL shape vs app: {meta.get('SHAPE', '?')}"
    )
    lines.append(f"machine load average (1 min): {meta.get('LOAD_BEFORE', '?')} before, {meta.get('LOAD_AFTER', '?')} after "
                 f"(after includes the run itself); git {meta.get('GIT_HEAD', '?')}, "
                 f"{meta.get('GIT_DIRTY', '?')} uncommitted paths; Python {meta.get('PYTHON', '?')}")
    text = "\n".join(lines)
    (res / "summary.txt").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
