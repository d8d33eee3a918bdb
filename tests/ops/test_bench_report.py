"""``bench/report.py`` divides the deposits by the floor measured just before
and just after them (their mean), shows both floors, and still reads a result
directory of the single-floor layout. A ratio short of the target comes with
the deposits a second it lacked; a run with ``BENCH_SHARES=1`` shows each
removable step's share of a deposit's CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPORT = Path(__file__).resolve().parents[2] / "bench" / "report.py"

WRK = """Running 20s test @ http://127.0.0.1:58685
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    30.51ms    2.27ms  53.44ms   78.84%
  Latency Distribution
     50%   30.06ms
     75%   31.39ms
     90%   33.18ms
     99%   38.55ms
  10000 requests in 20.00s, 9.79MB read
Requests/sec:    500.00
bench-statuses: 2xx=10000 non2xx=0
"""


def _pgbench(tps: float, processed: int) -> str:
    return (f"number of transactions actually processed: {processed}\n"
            "number of failed transactions: 0 (0.000%)\n"
            f"latency average = 6.835 ms\ntps = {tps} (without initial connection time)\n")


def _report(res: Path) -> str:
    (res / "meta.env").write_text("STAMP=test\nSECONDS=20\nSHAPE=MATCH\nPYTHON=3.11.2 /usr/bin/python3.11\n")
    (res / "wrk.txt").write_text(WRK)
    done = subprocess.run([sys.executable, str(REPORT), str(res)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _row(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(name))


def test_the_ratio_uses_the_mean_of_the_floors_around_the_deposits(tmp_path):
    (tmp_path / "pgbench-before.txt").write_text(_pgbench(2400.0, 48000))
    (tmp_path / "pgbench.txt").write_text(_pgbench(1600.0, 32000))

    out = _report(tmp_path)

    assert "2000.0" in _row(out, "pgbench TPS")
    assert "2400.0 / 1600.0" in _row(out, "  before / after the deposits")
    assert "0.250" in _row(out, "ratio deposit/pgbench") and "PASS" in _row(out, "ratio deposit/pgbench")
    assert "pgbench: 80000 txns (0 failed)" in out
    assert "Python 3.11.2 /usr/bin/python3.11" in out


def test_a_single_floor_directory_is_still_read(tmp_path):
    (tmp_path / "pgbench.txt").write_text(_pgbench(2500.0, 50000))

    out = _report(tmp_path)

    assert "2500.0" in _row(out, "pgbench TPS")
    assert "before / after" not in out
    assert "0.200" in _row(out, "ratio deposit/pgbench") and "FAIL" in _row(out, "ratio deposit/pgbench")
    assert "600.0 (+20%)" in _row(out, "  deposits needed for 0.24")


def test_a_passing_ratio_asks_for_nothing_more(tmp_path):
    (tmp_path / "pgbench.txt").write_text(_pgbench(2000.0, 40000))

    out = _report(tmp_path)

    assert "PASS" in _row(out, "ratio deposit/pgbench")
    assert "deposits needed" not in out


def test_the_shares_of_a_run_with_bench_shares_are_shown(tmp_path):
    (tmp_path / "pgbench.txt").write_text(_pgbench(2500.0, 50000))
    (tmp_path / "shares.txt").write_text("cpu_ms_per_deposit 2.904\nshare_metrics 0.041\nshare_rate_limit 0.066\n"
                                         "share_response 0.065\nshare_all 0.170\n")

    out = _report(tmp_path)

    assert "2.90 ms" in _row(out, "deposit CPU, in-process")
    assert "4.1%" in _row(out, "  share: metrics middleware")
    assert "6.6%" in _row(out, "  share: rate limit (Redis)")
    assert "6.5%" in _row(out, "  share: escrow response body")
    assert "17.0%" in _row(out, "  share: the three at once")
