"""Content addressing, written once above every blob backend.

A blob's key is its sha256, so the same bytes are stored once and a blob can never change under its
name. Every read is checked against that name: a corrupted blob raises :class:`IntegrityError` naming it.
With a :class:`~mloop.crypto.BlobCipher` blobs are sealed at rest; the name stays the plaintext's sha256,
and blobs stored before encryption was turned on are read as they are.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, cast

from mloop._names import valid
from mloop.artifacts.base import BlobBackend, TempBlob
from mloop.crypto import BlobCipher
from mloop.crypto.blobs import key_id_of
from mloop.errors import IntegrityError, MloopError, NotFound

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
# A temp file younger than this may be an upload in flight: cleaning leaves it alone.
SAFE_TEMP_AGE = timedelta(hours=1)


class ArtifactStore:
    """Put bytes or files, get them back verified.

    >>> store = ArtifactStore(LocalBlobBackend(".mloop/artifacts"))   # doctest: +SKIP
    >>> digest = store.put_bytes(b"model weights")                     # doctest: +SKIP
    >>> store.get_bytes(digest)                                        # doctest: +SKIP
    b'model weights'
    """

    def __init__(self, backend: BlobBackend, cipher: BlobCipher | None = None) -> None:
        self.backend = backend
        self.cipher = cipher

    def _put(self, digest: str, source: BinaryIO) -> None:
        if self.cipher is not None:
            source = self.cipher.seal(source)
        self.backend.put(self.key(digest), source)

    @property
    def url(self) -> str:
        return self.backend.url

    @staticmethod
    def key(digest: str) -> str:
        digest = _check_digest(digest)
        return f"sha256/{digest[:2]}/{digest}"

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` (once) and return its sha256 hex digest."""
        digest = hashlib.sha256(data).hexdigest()
        if not self.backend.exists(self.key(digest)):
            self._put(digest, io.BytesIO(data))
        return digest

    def put_file(self, path: str | Path) -> str:
        """Store the file at ``path`` (streamed, never read whole into memory) and return its digest."""
        path = Path(path)
        if not path.is_file():
            raise NotFound(f"Cannot store {path}: no such file.")
        hasher = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                hasher.update(chunk)
        digest = hasher.hexdigest()
        if not self.backend.exists(self.key(digest)):
            with path.open("rb") as handle:
                try:
                    self._put(digest, cast(BinaryIO, _Verifying(handle, digest, f"file {path}")))
                except IntegrityError:
                    # Not a corrupt blob: the file is no longer what was hashed, and the backend kept nothing.
                    raise IntegrityError(
                        f"The file {path} changed while it was being stored, so nothing was stored. "
                        "Store it again once nothing is writing to it."
                    ) from None
        return digest

    def put_stream(self, source: BinaryIO) -> str:
        """Store everything read from ``source``; it is spooled to a temp file to learn its digest first."""
        with tempfile.SpooledTemporaryFile(max_size=64 * _CHUNK) as spool:
            hasher = hashlib.sha256()
            while chunk := source.read(_CHUNK):
                hasher.update(chunk)
                spool.write(chunk)
            digest = hasher.hexdigest()
            if not self.backend.exists(self.key(digest)):
                spool.seek(0)
                self._put(digest, spool)  # type: ignore[arg-type]
        return digest

    def get_bytes(self, digest: str) -> bytes:
        """The blob's bytes, after checking they still hash to ``digest``."""
        with self.open(digest) as handle:
            return handle.read()

    def open(self, digest: str) -> BinaryIO:
        """A reader that raises :class:`IntegrityError` at the end if the bytes do not match ``digest``."""
        try:
            handle = self.backend.open(self.key(digest))
        except FileNotFoundError:
            raise NotFound(
                f"Artifact sha256:{digest} is not in the artifact store at {self.url}. "
                "Check the digest, or that artifact_url points at the store it was written to."
            ) from None
        what = f"artifact sha256:{digest} in {self.url}"
        if self.cipher is not None:
            handle = self.cipher.open(handle, what)
        return _Verifying(handle, digest, what)  # type: ignore[return-value]

    def get_file(self, digest: str, dest: str | Path) -> Path:
        """Copy the blob to ``dest`` atomically; nothing is left at ``dest`` if verification fails."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out, self.open(digest) as source:
                shutil.copyfileobj(source, out, length=_CHUNK)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest

    def exists(self, digest: str) -> bool:
        return self.backend.exists(self.key(digest))

    def delete(self, digest: str) -> None:
        self.backend.delete(self.key(digest))

    def digests(self) -> Iterator[str]:
        for key in self.backend.keys("sha256"):
            name = key.rsplit("/", 1)[-1]
            if valid(_DIGEST, name):
                yield name

    def verify(self, digest: str) -> bool:
        """True if the blob is intact; False if its bytes no longer match its digest."""
        try:
            with self.open(digest) as handle:
                while handle.read(_CHUNK):
                    pass
        except IntegrityError:
            return False
        return True

    def temp_files(self) -> list[TempBlob]:
        """The temporary files of uploads: in flight, or left behind by a process killed mid-upload."""
        return list(self.backend.temps())

    def clean_temp_files(
        self, older_than: timedelta = SAFE_TEMP_AGE, *, now: datetime | None = None
    ) -> list[TempBlob]:
        """Delete the temp files not written to for ``older_than`` (default an hour: no live upload is
        that quiet); returns what was deleted. No blob is touched: a temp file is never a blob."""
        if older_than < timedelta(0):
            raise MloopError(f"older_than must not be negative, got {older_than}.")
        cutoff = (now or datetime.now(UTC)) - older_than
        removed = []
        for temp in self.backend.temps():
            if temp.modified <= cutoff:
                self.backend.delete(temp.key)
                removed.append(temp)
        return removed

    def key_id(self, digest: str) -> str | None:
        """The data key blob ``digest`` is sealed under; None for a plaintext blob."""
        with self.backend.open(self.key(digest)) as handle:
            return key_id_of(handle.read(300))

    def reseal(self, digest: str) -> None:
        """Store blob ``digest`` again under the active data key (atomically, through the backend); its
        plaintext is checked against the digest on the way."""
        assert self.cipher is not None, "reseal needs encryption at rest"
        with self.open(digest) as plain:
            self._put(digest, plain)

    def corrupt(self) -> list[str]:
        """Digests of every blob whose content no longer matches its name."""
        return [digest for digest in self.digests() if not self.verify(digest)]


class _Verifying(io.RawIOBase):
    """Wraps a reader; hashes what passes through and checks the digest once the end is reached."""

    def __init__(self, inner: BinaryIO, digest: str, what: str) -> None:
        self._inner = inner
        self._digest = digest
        self._what = what
        self._hasher = hashlib.sha256()
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        if not data:
            self._finish()
            return 0
        self._hasher.update(data)
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            data = self._inner.read()
            self._hasher.update(data)
            self._finish()
            return data
        return super().read(size) or b""

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        actual = self._hasher.hexdigest()
        if actual != self._digest:
            raise IntegrityError(
                f"The {self._what} is corrupt: its content hashes to sha256:{actual}. "
                "Restore the blob from a backup or log the artifact again; "
                "`mloop artifacts verify` lists every corrupt blob."
            )

    def close(self) -> None:
        self._inner.close()
        super().close()


def _check_digest(digest: str) -> str:
    if not valid(_DIGEST, digest):
        raise MloopError(
            f"{digest!r} is not an artifact digest: expected 64 lowercase hex characters (sha256)."
        )
    return digest
