"""Writing an upload to storage (local or S3 through django-storages) while hashing it.

One pass over the bytes: the storage backend reads the file in chunks and
each read feeds SHA-256, so memory stays flat whatever the size. A rewind to
the start (backends do that before reading, and S3 retries) restarts the hash.
"""

from __future__ import annotations

import hashlib
import os
import uuid

from django.core.files import File
from django.core.files.storage import default_storage


class HashingFile(File):
    def __init__(self, file, name=None):
        super().__init__(file, name)
        self._digest = hashlib.sha256()
        self.bytes_read = 0

    def read(self, size=-1):
        data = self.file.read(size)
        self._digest.update(data)
        self.bytes_read += len(data)
        return data

    def seek(self, offset, whence=os.SEEK_SET):
        position = self.file.seek(offset, whence)
        if position == 0:
            self._digest = hashlib.sha256()
            self.bytes_read = 0
        return position

    def chunks(self, chunk_size=None):
        self.seek(0)
        chunk_size = chunk_size or self.DEFAULT_CHUNK_SIZE
        while data := self.read(chunk_size):
            yield data

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


def store_upload(upload, *, folder: str, extension: str) -> tuple[str, str, int]:
    """Save ``upload`` under a random name; return (stored name, sha256, size)."""
    hashing = HashingFile(upload.file if hasattr(upload, "file") else upload)
    name = default_storage.save(f"{folder}/{uuid.uuid4().hex}{extension}", hashing)
    return name, hashing.sha256, hashing.bytes_read


def delete_quietly(name: str) -> None:
    try:
        default_storage.delete(name)
    except OSError:  # best effort: an orphan file is harmless, a masked upload error is not
        pass
