"""The import contracts in ``.importlinter`` hold (``lint-imports``), and say what README's architecture says."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS_LOW_TO_HIGH = [
    "kobatela.core",
    "kobatela.audit",
    "kobatela.accounts",
    "kobatela.events",
    "payments",
    "escrow",
    "proofs | spend",
    "webhooks",
]


def _contracts() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    return config


def test_every_import_contract_is_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_the_layers_are_the_documented_ones_with_no_exceptions():
    config = _contracts()
    layers = [line.strip() for line in config["importlinter:contract:layers"]["layers"].strip().splitlines()]
    assert layers[::-1] == LAYERS_LOW_TO_HIGH
    assert not [name for name in config.sections() if config[name].get("ignore_imports")], \
        "an ignore_imports exception needs a comment saying why, and a test naming it"
    readme = (ROOT / "README.md").read_text()
    assert " → ".join(LAYERS_LOW_TO_HIGH).replace("kobatela.", "") in readme.replace("kobatela/", "")
