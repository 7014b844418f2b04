"""LocalBlobs: a folder on disk. Writes go to a temporary name and are renamed in."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_KEY = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-.]+)*$")


def check_key(key: str) -> str:
    """Keys are relative slash paths with no ``..``: they can never leave the root."""
    if not _KEY.match(key) or any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class LocalBlobs:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def local_path(self, key: str) -> Path | None:
        path = self.path(key)
        return path if path.is_file() else None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        """A file to write ``key`` into; it appears only if the block ends cleanly."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, source: Path) -> None:
        with self.writer(key) as handle, source.open("rb") as src:
            shutil.copyfileobj(src, handle, 1 << 20)

    def fetch_to(self, key: str, dest: Path) -> None:
        shutil.copyfile(self.path(key), dest)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def presigned_get(self, key: str, ttl_s: float) -> str | None:
        check_key(key)
        return None  # a local folder has no URLs of its own: the API signs /files links

    def presigned_put(self, key: str, ttl_s: float) -> str | None:
        check_key(key)
        return None  # remote workers upload through the API's internal route
