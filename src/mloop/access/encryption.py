"""``project.encryption``: the data keys of encryption at rest, and their rotation.

Rotating makes a new data key active at once (new files are written under it), rewrites every file kept
at rest under it (each one atomically: readers see the old file or the new one, and the old key stays
in the keyring until the end, so nothing stops reading), then retires the old keys. A rotation that was
killed is finished by running it again: the newest unretired key is the one being rotated to, and files
already under it are skipped.

>>> report = project.encryption.rotate()   # doctest: +SKIP
>>> report.new_key, report.files, report.blobs   # doctest: +SKIP
('dk-20261206-1a2b3c4d', 42, 7)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from mloop._service import Service
from mloop.crypto import Keyring
from mloop.errors import ConfigError
from mloop.security import data_keys
from mloop.store.schema import DataKeyRow

Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass(frozen=True)
class DataKey:
    key_id: str
    created_at: datetime
    retired_at: datetime | None
    active: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RotationReport:
    new_key: str
    retired: list[str] = field(default_factory=list)
    files: int = 0  # Parquet files rewritten
    blobs: int = 0  # artifact blobs sealed again
    resumed: bool = False  # finished a rotation that had been interrupted

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Encryption(Service):
    """The data keys (``data_keys()``) and their rotation (``rotate()``)."""

    @property
    def enabled(self) -> bool:
        return self._ctx.parquet.keyring is not None

    def data_keys(self) -> list[DataKey]:
        """Every data key, oldest first; the active one encrypts new files."""
        self._authorize("project.read")
        with self._ctx.store.read() as session:
            rows = session.scalars(
                select(DataKeyRow)
                .where(DataKeyRow.project_id == self._ctx.project_id)
                .order_by(DataKeyRow.created_at, DataKeyRow.key_id)
            ).all()
        live = [r.key_id for r in rows if r.retired_at is None]
        return [
            DataKey(r.key_id, r.created_at, r.retired_at, bool(live) and r.key_id == live[-1]) for r in rows
        ]

    def rotate(self, progress: Progress | None = None) -> RotationReport:
        """Re-encrypt every dataset, quarantine, push-log, prediction-log and feedback file and every
        artifact blob under a new data key, then retire the old ones (see the module's docstring)."""
        self._authorize("encryption.rotate", "project")
        ring = self._keyring()
        with self._ctx.store.read() as session:
            live = [
                key_id for key_id, _, retired in data_keys.rows(session, self._ctx.project_id) if not retired
            ]
        if len(live) > 1:  # an interrupted rotation: finish it, towards the key it had made
            report = RotationReport(live[-1], resumed=True)
        else:
            key_id, wrapped = ring.create()
            with self._mutate("encryption.rotate", "project", action="encryption.rotate.start",
                              new_key=key_id, old_keys=live) as change:  # fmt: skip
                data_keys.add(change.session, self._ctx.project_id, key_id, wrapped)
            report = RotationReport(key_id)
        ring.refresh()
        target = ring.active_id
        assert target == report.new_key, "the newest unretired key is the one rotated to"
        files = list(self._parquet_files())
        for i, path in enumerate(files):  # on S3 each file is read and uploaded whole again
            if self._ctx.parquet.key_id(path) != target:
                self._ctx.parquet.rewrite(path)
                report.files += 1
            if progress:
                progress("files", i + 1, len(files))
        artifacts = self._ctx.artifacts
        digests = list(artifacts.digests())
        for i, digest in enumerate(digests):
            if artifacts.key_id(digest) != target:
                artifacts.reseal(digest)
                report.blobs += 1
            if progress:
                progress("blobs", i + 1, len(digests))
        with self._mutate("encryption.rotate", "project", new_key=target,
                          files=report.files, blobs=report.blobs) as change:  # fmt: skip
            report.retired = data_keys.retire(change.session, self._ctx.project_id, keep=target)
            change.payload["retired"] = report.retired
        ring.refresh()
        return report

    def _keyring(self) -> Keyring:
        ring = self._ctx.parquet.keyring
        if ring is None:
            raise ConfigError(
                "Encryption at rest is not enabled, so there is no data key to rotate. Set "
                "encryption.enabled: true in mloop.yaml and MLOOP_DATA_KEY (docs/security.md)."
            )
        return ring

    def _parquet_files(self) -> Iterator[str]:
        """Every Parquet file mloop keeps under ``data_url`` (datasets, quarantine, the push log, the
        prediction log, feedback), in a folder or on S3, not temp files (dot names) nor ingestion scratch
        folders (``_tmp``, ``_staging``)."""
        storage = self._ctx.data
        with storage.reaching():
            found = storage.list(storage.root)
        for location in found:
            relative = location[len(storage.root) :].strip("/").split("/")
            if not any(part.startswith(".") or part in ("_tmp", "_staging") for part in relative):
                yield location
