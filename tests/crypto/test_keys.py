"""The master key: from MLOOP_DATA_KEY or a private key file; a wrong one is a clear error at once."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from mloop.config.sections import EncryptionSettings
from mloop.crypto import DataKeyError, Keyring, master_key
from mloop.errors import ConfigError

KEY = bytes(range(32))


def test_the_key_is_read_as_hex_or_base64() -> None:
    settings = EncryptionSettings(enabled=True)
    assert master_key(settings, KEY.hex()) == KEY
    assert master_key(settings, base64.b64encode(KEY).decode()) == KEY


def test_a_short_key_names_how_to_make_one() -> None:
    with pytest.raises(ConfigError, match="openssl rand -hex 32"):
        master_key(EncryptionSettings(enabled=True), "abcd")


def test_no_key_at_all_names_both_places() -> None:
    with pytest.raises(ConfigError, match="MLOOP_DATA_KEY.*key_file"):
        master_key(EncryptionSettings(enabled=True), None)


def test_a_key_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "data.key"
    path.write_text(KEY.hex())
    os.chmod(path, 0o644)
    settings = EncryptionSettings(enabled=True, key_file=str(path))
    with pytest.raises(ConfigError, match="chmod 600"):
        master_key(settings, None)
    os.chmod(path, 0o600)
    assert master_key(settings, None) == KEY


def test_a_wrong_master_key_is_a_clear_error_not_garbage() -> None:
    ring = Keyring(KEY, lambda: [])
    key_id, wrapped = ring.create()
    other = Keyring(bytes(32), lambda: [(key_id, wrapped, False)])
    with pytest.raises(DataKeyError, match="MLOOP_DATA_KEY.*not the key"):
        other.refresh()


def test_data_keys_are_unwrapped_by_the_right_master_key() -> None:
    ring = Keyring(KEY, lambda: [])
    key_id, wrapped = ring.create()
    again = Keyring(KEY, lambda: [(key_id, wrapped, False)])
    assert again.active_id == key_id
    assert again.key(key_id) == ring.key(key_id)
