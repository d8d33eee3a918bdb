import pytest


@pytest.fixture(autouse=True)
def checkpoint_dir(settings, tmp_path):
    """Each test's signed checkpoints in a directory of its own (the external sink)."""
    directory = tmp_path / "audit-checkpoints"
    settings.STORAGES = {**settings.STORAGES, "audit_checkpoints": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(directory)}}}
    return directory
