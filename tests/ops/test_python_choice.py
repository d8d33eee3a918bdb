"""``scripts/python.sh`` picks the interpreter ``.venv`` is made from, for
``make run``, ``make test`` and ``make bench`` alike: ``KOBATELA_PYTHON`` when
set, else the distribution's optimised CPython 3.11, and a ``.venv`` made from
another interpreter is made again rather than silently kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "python.sh"


def _bash(command: str, cwd: Path, **env: str | None) -> subprocess.CompletedProcess:
    """``command`` after sourcing the script; ``env`` sets variables, ``None`` unsets one."""
    merged = {key: value for key, value in {**os.environ, **env}.items() if value is not None}
    return subprocess.run(["bash", "-c", f"set -euo pipefail; source {SCRIPT}; {command}"], cwd=cwd,
                          env=merged, capture_output=True, text=True, timeout=120)


def _venv_base(venv: Path) -> str:
    lines = (venv / "pyvenv.cfg").read_text().splitlines()
    return next(line.split(" = ", 1)[1] for line in lines if line.startswith("executable = "))


def test_kobatela_python_wins(tmp_path):
    chosen = _bash("kob_python", tmp_path, KOBATELA_PYTHON=sys.executable)

    assert chosen.stdout.strip() == sys.executable


def test_the_distribution_build_is_preferred_to_one_on_path(tmp_path):
    chosen = _bash("kob_python", tmp_path, KOBATELA_PYTHON=None)

    if os.access("/usr/bin/python3.11", os.X_OK):
        assert chosen.stdout.strip() == "/usr/bin/python3.11"
    else:  # no distribution build: whatever python3.11 or python3 PATH gives
        assert Path(chosen.stdout.strip()).name.startswith("python3")


def test_a_venv_of_another_interpreter_is_made_again(tmp_path):
    chosen = os.path.realpath(sys._base_executable)
    subprocess.run([chosen, "-m", "venv", str(tmp_path / ".venv")], check=True, timeout=120)
    assert _bash("kob_venv_current", tmp_path, KOBATELA_PYTHON=chosen).returncode == 0

    # The same .venv, as if made from another interpreter.
    config = tmp_path / ".venv" / "pyvenv.cfg"
    config.write_text(config.read_text().replace(_venv_base(tmp_path / ".venv"), "/nowhere/python3"))
    (tmp_path / ".venv" / "stamp").write_text("from the old interpreter")
    assert _bash("kob_venv_current", tmp_path, KOBATELA_PYTHON=chosen).returncode != 0

    remade = _bash("kob_venv && kob_venv_current", tmp_path, KOBATELA_PYTHON=chosen)

    assert remade.returncode == 0, remade.stderr
    assert "making .venv again" in remade.stderr
    assert os.path.realpath(_venv_base(tmp_path / ".venv")) == chosen
    assert not (tmp_path / ".venv" / "stamp").exists()
    # Current now: a second call keeps it as it is.
    (tmp_path / ".venv" / "stamp").write_text("kept")
    assert _bash("kob_venv", tmp_path, KOBATELA_PYTHON=chosen).returncode == 0
    assert (tmp_path / ".venv" / "stamp").read_text() == "kept"
