"""Instructions per request, counted by valgrind (callgrind): the app's CPU cost
of one deposit, as a figure the machine's drift does not move.

Usage: python bench/instructions.py <api key> <escrow id> [<escrow id> ...]

Requests go through Django's WSGI handler in this process, as gunicorn's worker
calls it (every middleware, DRF, the idempotency claim and answer, the service,
the response), against the database and Redis of the environment; the HTTP
server and the network are left out. Each count runs the same program twice
under callgrind — ``WARM`` requests then ``FEW``, and ``WARM`` then ``MANY`` —
and divides the difference by ``MANY - FEW``: start-up, imports and warm-up
cancel out. Python's hash seed is fixed; counts of the same code agreed within
3.3 % here (bench/README.md, "Fourth pass"), where wall-clock figures on this
VM drift by ±30 %. Instructions are not time (a syscall or a cache miss costs
more than an add), so this measures what a change does to the Python work,
and ``make bench`` what reaches clients.

Prints ``deposit_instructions <n>`` and ``get_instructions <n>`` (the audited
read); bench/run.sh runs it when ``BENCH_INSTRUCTIONS=1``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import inprocess  # bench/inprocess.py: this script's directory is on sys.path

WARM, FEW, MANY = 100, 40, 140
_CHILD = "_BENCH_INSTRUCTIONS_CHILD"


def _requests(mode: str, api_key: str, escrow_ids: list[str], count: int) -> None:
    """``count`` requests through the WSGI handler; any non-2xx answer stops the count."""
    app = inprocess.application()
    for n in range(count):
        inprocess.send(app, mode, api_key, escrow_ids[n % len(escrow_ids)], tool="instructions")


def _collected(mode: str, count: int, argv: list[str]) -> int:
    """Instructions callgrind counted for the whole program with ``count`` measured requests."""
    env = {**os.environ, _CHILD: f"{mode}:{count}", "PYTHONHASHSEED": "0"}
    run = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          sys.executable, __file__, *argv], env=env, capture_output=True, text=True)
    found = re.search(r"Collected\s*:\s*(\d+)", run.stderr)
    if run.returncode != 0 or not found:
        sys.exit(f"instructions: the {mode} count failed (exit {run.returncode}):\n{run.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit(__doc__)
    api_key, escrow_ids = argv[0], argv[1:]
    if os.environ.get(_CHILD):
        mode, count = os.environ[_CHILD].split(":")
        _requests(mode, api_key, escrow_ids, WARM + int(count))
        return
    for mode in ("deposit", "get"):
        per_request = (_collected(mode, MANY, argv) - _collected(mode, FEW, argv)) // (MANY - FEW)
        print(f"{mode}_instructions {per_request}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
