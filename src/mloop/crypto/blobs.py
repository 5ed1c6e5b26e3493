"""Sealed artifact blobs: AES-256-GCM in chunks, so a blob of any size streams in and out in bounded
memory and any change is caught.

Format::

    header  = b"MLOOPENC" | version (1 byte) | key id length (1 byte) | key id | nonce prefix (8 bytes)
    chunk i = AES-GCM(data key, nonce = prefix | i (4 bytes), aad = header | i (8 bytes) | last (1 byte))

Every chunk holds ``CHUNK`` bytes of plaintext but the last, which holds 0 to ``CHUNK`` (an empty blob is
one empty last chunk). Binding the index and the last flag into each tag makes reordered, dropped,
duplicated or truncated chunks fail authentication like a changed byte does.

>>> from mloop.crypto.keys import Keyring
>>> cipher = BlobCipher(Keyring.fixed({"dk-1": bytes(32)}, "dk-1"))
>>> import io
>>> sealed = cipher.seal(io.BytesIO(b"weights")).read()
>>> cipher.open(io.BytesIO(sealed), "example").read()
b'weights'
"""

from __future__ import annotations

import io
import os
import struct
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mloop.crypto.keys import Keyring
from mloop.errors import IntegrityError

MAGIC = b"MLOOPENC"
VERSION = 1
CHUNK = 1 << 20
_TAG = 16
_PREFIX = 8


def is_sealed(head: bytes) -> bool:
    """Whether bytes starting a blob are a sealed blob's header (the rest are plaintext, stored before
    encryption was turned on)."""
    return head.startswith(MAGIC)


def key_id_of(head: bytes) -> str | None:
    """The data key a sealed blob names in its header (``head``: its first 300 bytes); None if plain."""
    if not is_sealed(head) or len(head) < len(MAGIC) + 2:
        return None
    size = head[len(MAGIC) + 1]
    return head[len(MAGIC) + 2 : len(MAGIC) + 2 + size].decode("ascii", "replace")


class BlobCipher:
    """Seals and opens blobs with the keyring's data keys."""

    def __init__(self, keyring: Keyring, chunk: int = CHUNK) -> None:
        self.keyring = keyring
        self.chunk = chunk

    def seal(self, source: BinaryIO) -> BinaryIO:
        """A reader of ``source`` sealed under the active data key."""
        key_id = self.keyring.active_id
        return _Sealing(source, self.keyring.key(key_id), key_id, self.chunk)  # type: ignore[return-value]

    def open(self, source: BinaryIO, what: str) -> BinaryIO:
        """A reader of the plaintext of ``source``: sealed blobs are opened, plain ones passed through.
        A changed, reordered or truncated sealed blob raises :class:`IntegrityError` naming ``what``."""
        head = _read_exactly(source, len(MAGIC))
        if not is_sealed(head):
            return _Prefixed(head, source)  # type: ignore[return-value]
        return _Opening(source, self.keyring, what, self.chunk)  # type: ignore[return-value]


def _header(key_id: str, prefix: bytes) -> bytes:
    name = key_id.encode("ascii")
    return MAGIC + bytes([VERSION, len(name)]) + name + prefix


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">Q?", index, last)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


class _Stream(io.RawIOBase):
    """A reader producing bytes block by block from ``_next`` (None at the end)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._end = False

    def readable(self) -> bool:
        return True

    def _next(self) -> bytes | None:
        raise NotImplementedError

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer and not self._end:
            block = self._next()
            if block is None:
                self._end = True
            else:
                self._buffer = block
        size = min(len(buffer), len(self._buffer))
        buffer[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


class _Sealing(_Stream):
    def __init__(self, source: BinaryIO, key: bytes, key_id: str, chunk: int) -> None:
        super().__init__()
        self._source, self._aead, self._chunk = source, AESGCM(key), chunk
        self._prefix = os.urandom(_PREFIX)
        self._head = _header(key_id, self._prefix)
        self._index = 0
        self._pending: bytes | None = None
        self._started = self._done = False

    def _next(self) -> bytes | None:
        if self._done:
            return None
        if not self._started:
            self._started = True
            self._pending = _read_exactly(self._source, self._chunk)
            return self._head
        assert self._pending is not None
        current = self._pending
        following = _read_exactly(self._source, self._chunk) if len(current) == self._chunk else b""
        last = not following
        sealed = self._aead.encrypt(
            _nonce(self._prefix, self._index), current, _aad(self._head, self._index, last)
        )
        self._index += 1
        self._pending = following
        self._done = last
        return sealed

    def close(self) -> None:
        self._source.close()
        super().close()


class _Opening(_Stream):
    def __init__(self, source: BinaryIO, keyring: Keyring, what: str, chunk: int) -> None:
        super().__init__()
        self._source, self._what, self._chunk = source, what, chunk
        fixed = _read_exactly(source, 2)
        if len(fixed) < 2 or fixed[0] != VERSION:
            raise self._corrupt("its header is damaged or of an unknown version")
        name = _read_exactly(source, fixed[1])
        self._prefix = _read_exactly(source, _PREFIX)
        if len(name) != fixed[1] or len(self._prefix) != _PREFIX:
            raise self._corrupt("its header is truncated")
        self._head = MAGIC + fixed + name + self._prefix
        self._aead = AESGCM(keyring.key(name.decode("ascii", "replace")))
        self._index = 0
        self._pending = _read_exactly(source, chunk + _TAG)
        self._done = False

    def _corrupt(self, why: str) -> IntegrityError:
        return IntegrityError(
            f"The {self._what} is corrupt or was tampered with: {why}. Restore it from a backup or write it "
            "again; `mloop artifacts verify` lists every corrupt blob."
        )

    def _next(self) -> bytes | None:
        if self._done:
            return None
        current = self._pending
        following = _read_exactly(self._source, 1) if len(current) == self._chunk + _TAG else b""
        last = not following
        if len(current) < _TAG:
            raise self._corrupt("it ends inside a chunk")
        try:
            plain = self._aead.decrypt(
                _nonce(self._prefix, self._index), current, _aad(self._head, self._index, last)
            )
        except InvalidTag:
            raise self._corrupt(f"chunk {self._index} does not authenticate") from None
        self._index += 1
        if not last:
            self._pending = following + _read_exactly(self._source, self._chunk + _TAG - 1)
        self._done = last
        return plain

    def close(self) -> None:
        self._source.close()
        super().close()


class _Prefixed(io.RawIOBase):
    """``head`` (already read) followed by the rest of ``source``."""

    def __init__(self, head: bytes, source: BinaryIO) -> None:
        self._head, self._source = head, source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._source.close()
        super().close()


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes, fewer only at the end (a raw or network reader may return short reads)."""
    parts, left = [], size
    while left > 0:
        data = source.read(left)
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return b"".join(parts)
