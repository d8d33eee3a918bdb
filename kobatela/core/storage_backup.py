"""Copy every object of the default storage (local ``MEDIA_ROOT`` or S3) to a
folder and back: the file half of a backup (``scripts/backup.sh``,
``scripts/restore.sh``). Through Django's storage API, so the same code
serves both backends."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Iterator

from django.core.files import File
from django.core.files.storage import default_storage


def _walk(prefix: str = "") -> Iterator[str]:
    directories, files = default_storage.listdir(prefix)
    for name in files:
        yield str(PurePosixPath(prefix) / name) if prefix else name
    for directory in directories:
        yield from _walk(str(PurePosixPath(prefix) / directory) if prefix else directory)


def storage_export(*, to: Path) -> list[tuple[str, str, int]]:
    """Write every stored object under ``to`` (same relative names); answer (name, sha256, size) of each."""
    copied = []
    for name in sorted(_walk()):
        target = to / name
        if ".." in PurePosixPath(name).parts:
            raise ValueError(f"refusing a stored name that leaves the folder: {name!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with default_storage.open(name, "rb") as source, open(target, "wb") as out:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        copied.append((name, digest.hexdigest(), target.stat().st_size))
    return copied


def storage_import(*, source: Path) -> int:
    """Store every file under ``source`` at its relative name; an object already
    there with that name is left alone (a restore into a fresh storage)."""
    count = 0
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        name = path.relative_to(source).as_posix()
        if default_storage.exists(name):
            continue
        with open(path, "rb") as handle:
            saved = default_storage.save(name, File(handle))
        if saved != name:
            raise RuntimeError(f"storage renamed {name!r} to {saved!r}")
        count += 1
    return count
