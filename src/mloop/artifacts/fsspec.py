"""Blobs on any fsspec filesystem (s3://, gs://, az://, memory://, file://).

Object stores make a single PUT atomic; the blob is uploaded under a temporary name and moved into place
so that a listing never shows a partial upload either.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

from mloop.artifacts.base import TempBlob
from mloop.errors import BackendNotInstalled

TEMP = ".tmp"  # the folder under the root where put() uploads before moving a blob into place


class FsspecBlobBackend:
    def __init__(self, url: str, **storage_options: Any) -> None:
        import fsspec

        try:
            self.fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except (ImportError, ValueError) as exc:
            scheme = url.split("://", 1)[0]
            raise BackendNotInstalled(
                f"artifact_url '{url}' needs the fsspec driver for {scheme}:// ({exc}). "
                "For S3: pip install 'mloop[s3]'; or use a local folder (the default .mloop/artifacts)."
            ) from None
        self.url = url
        self.root = root.rstrip("/")

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}"

    def put(self, key: str, source: BinaryIO) -> None:
        path = self._path(key)
        tmp = f"{self.root}/{TEMP}/{uuid.uuid4().hex}"
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.makedirs(tmp.rsplit("/", 1)[0], exist_ok=True)
        try:
            with self.fs.open(tmp, "wb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
            self.fs.mv(tmp, path)
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            raise

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        if not self.fs.isfile(path):
            raise FileNotFoundError(path)
        return self.fs.open(path, "rb")

    def exists(self, key: str) -> bool:
        return bool(self.fs.isfile(self._path(key)))

    def delete(self, key: str) -> None:
        if self.exists(key):
            self.fs.rm(self._path(key))

    def keys(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix).rstrip("/") if prefix else self.root
        if not self.fs.exists(base):
            return
        for path in sorted(self.fs.find(base)):
            key = path[len(self.root) + 1 :] if path.startswith(self.root) else path
            if not key.startswith(f"{TEMP}/") and not key.rsplit("/", 1)[-1].startswith("."):
                yield key

    def temps(self) -> Iterator[TempBlob]:
        folder = f"{self.root}/{TEMP}"
        if not self.fs.exists(folder):
            return
        for path, info in sorted(self.fs.find(folder, detail=True).items()):
            key = path[len(self.root) + 1 :] if path.startswith(self.root) else path
            yield TempBlob(key, int(info.get("size") or 0), _modified(info))


def _modified(info: dict[str, Any]) -> datetime:
    """When a file was last written, from what its filesystem reports (each names it its own way)."""
    for name in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(name)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)  # unknown: counts as new, so a clean never deletes it by mistake
