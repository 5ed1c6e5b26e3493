"""The keyed hash of PII values: stable, keyed, and the key file is private."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np

from mloop.security.pii import MASK, Pseudonymizer


def test_the_key_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / ".mloop" / "pii.key"
    first = Pseudonymizer.from_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Pseudonymizer.from_file(path).token(42) == first.token(42)
    assert Pseudonymizer(b"x" * 32).token(42) != first.token(42)  # keyed: another project, another hash


def test_equal_values_hash_equal_and_match_plain_or_hashed() -> None:
    keys = Pseudonymizer(b"k" * 32)
    assert keys.token(42) == keys.token("42") == keys.token(np.int64(42)) == keys.token(42.0)
    assert keys.token(42) != keys.token(43)
    assert keys.matches(keys.token(42), "42") and keys.matches(42, "42") and not keys.matches(None, 42)
    assert not keys.matches(keys.token(43), 42)


def test_protect_hashes_masks_or_keeps_the_named_columns() -> None:
    keys = Pseudonymizer(b"k" * 32)
    inputs = {"email": ["a@b.c", None], "amount": [1.0, 2.0]}
    hashed = keys.protect(inputs, {"email"}, "hash")
    assert hashed["email"] == [keys.token("a@b.c"), None] and hashed["amount"] == [1.0, 2.0]
    assert keys.protect(inputs, {"email"}, "mask")["email"] == [MASK, None]
    assert keys.protect(inputs, {"email"}, "keep") == inputs
    assert inputs["email"] == ["a@b.c", None]  # the caller's columns are not changed
