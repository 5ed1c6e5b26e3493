"""The key hierarchy: one master key (from the environment or a key file) wraps the data keys, which
the metadata store keeps wrapped; files name the data key they were written under.

>>> ring = Keyring(bytes(32), lambda: [])
>>> key_id, wrapped = ring.create()     # a new data key, wrapped by the master key
>>> ring.active_id == key_id
True
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mloop.config.sections import EncryptionSettings
from mloop.errors import ConfigError

KEY_BYTES = 32
_NONCE = 12
_REFRESH_SECONDS = 60.0  # how often a long-lived process looks for a data key rotated elsewhere

# (key id, wrapped key, retired) as the metadata store keeps them, oldest first
KeyRows = Sequence[tuple[str, bytes, bool]]


class DataKeyError(ConfigError):
    """The master key does not open the project's data keys, or a file names a data key we do not have."""


def master_key(settings: EncryptionSettings, env_key: str | None) -> bytes:
    """The 32-byte master key: ``MLOOP_DATA_KEY`` (hex or base64) if set, else ``key_file``'s content."""
    if env_key:
        return _decode(env_key, "MLOOP_DATA_KEY")
    if settings.key_file is None:
        raise ConfigError(
            "encryption.enabled is true but there is no master key: set MLOOP_DATA_KEY to 32 random bytes "
            "(hex or base64, e.g. `openssl rand -hex 32`) or point encryption.key_file at a file holding them."
        )
    path = Path(settings.key_file)
    try:
        info = path.stat()
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"encryption.key_file {path} cannot be read ({exc}). Create it with `openssl rand -hex 32 > {path}` "
            f"and `chmod 600 {path}`, or set MLOOP_DATA_KEY instead."
        ) from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"encryption.key_file {path} can be read by other users (mode {stat.S_IMODE(info.st_mode):o}); "
            f"run `chmod 600 {path}`."
        )
    return _decode(text, f"encryption.key_file {path}")


def _decode(text: str, where: str) -> bytes:
    text = text.strip()
    for decode in (bytes.fromhex, base64.b64decode):
        try:
            key = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(key) == KEY_BYTES:
            return key
    raise ConfigError(
        f"{where} is not a 32-byte key written as 64 hex characters or base64; "
        "make one with `openssl rand -hex 32`."
    )


class Keyring:
    """The data keys of one project, unwrapped by the master key; thread-safe.

    ``load`` returns the stored rows (key id, wrapped key, retired); it is called at the first use, when a
    file names a key not seen yet (rotated by another process) and at most once a minute to learn a newer
    active key. The newest unretired key is the active one: new files are written under it.
    """

    def __init__(self, master: bytes, load: Callable[[], KeyRows]) -> None:
        self._aead = AESGCM(master)
        self._load = load
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}
        self._active: str | None = None
        self._loaded = float("-inf")

    # ---- the data keys ------------------------------------------------------------------------------

    def create(self) -> tuple[str, bytes]:
        """A fresh data key, made active here at once; returns (key id, wrapped key) for the store."""
        key_id = f"dk-{time.strftime('%Y%m%d')}-{secrets.token_hex(4)}"
        key = AESGCM.generate_key(bit_length=256)
        with self._lock:
            self._keys[key_id] = key
            self._active = key_id
        return key_id, self.wrap(key_id, key)

    def wrap(self, key_id: str, key: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, key, key_id.encode())

    def _unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], key_id.encode())
        except InvalidTag:
            raise DataKeyError(
                f"The master key does not open data key {key_id}: MLOOP_DATA_KEY (or encryption.key_file) "
                "is not the key this project's data was encrypted with. Set the right key; nothing was "
                "read or written."
            ) from None

    def refresh(self) -> None:
        """Read the stored keys again (after a rotation in another process)."""
        rows = self._load()
        keys = {
            key_id: self._keys.get(key_id) or self._unwrap(key_id, wrapped) for key_id, wrapped, _ in rows
        }
        live = [key_id for key_id, _, retired in rows if not retired]
        with self._lock:
            self._keys.update(keys)
            if live:
                self._active = live[-1]
            self._loaded = time.monotonic()

    def forget(self, key_id: str) -> None:
        """Drop a key from memory (a retired key, once nothing is written under it)."""
        with self._lock:
            self._keys.pop(key_id, None)

    @property
    def active_id(self) -> str:
        if self._active is None or time.monotonic() - self._loaded > _REFRESH_SECONDS:
            self.refresh()
        if self._active is None:
            raise DataKeyError(
                "This project has no data key yet; open it with encryption.enabled: true to create one."
            )
        return self._active

    def key(self, key_id: str) -> bytes:
        """The data key ``key_id``; a key unknown here is looked up in the store once more."""
        key = self._keys.get(key_id)
        if key is None:
            self.refresh()
            key = self._keys.get(key_id)
        if key is None:
            raise DataKeyError(
                f"A file was encrypted under data key {key_id!r}, which this project does not have: the file "
                "belongs to another project or its key was deleted from the metadata store."
            )
        return key

    def known(self) -> Mapping[str, bytes]:
        with self._lock:
            return dict(self._keys)

    @classmethod
    def fixed(cls, keys: Mapping[str, bytes], active: str) -> Keyring:
        """A keyring of keys already unwrapped (the compactor child, tests); it never loads."""
        ring = cls(bytes(KEY_BYTES), lambda: [])
        ring._keys, ring._active, ring._loaded = dict(keys), active, float("inf")
        return ring
