from pathlib import Path

import pytest


@pytest.fixture
def checkpoint_dir(settings) -> Path:
    """The external sink of the signed checkpoints (emptied after every test: tests/conftest.py)."""
    return Path(settings.AUDIT_CHECKPOINT_DIR)
