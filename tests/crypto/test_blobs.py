"""Sealed blobs: any size round-trips, and any change, reordering or truncation is an IntegrityError."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mloop.crypto import BlobCipher, DataKeyError, Keyring
from mloop.crypto.blobs import MAGIC, key_id_of
from mloop.errors import IntegrityError

CHUNK = 64


def cipher(active: str = "dk-a") -> BlobCipher:
    return BlobCipher(Keyring.fixed({"dk-a": bytes(range(32)), "dk-b": bytes(32)}, active), chunk=CHUNK)


def seal(data: bytes, active: str = "dk-a") -> bytes:
    return cipher(active).seal(io.BytesIO(data)).read()


def unseal(sealed: bytes) -> bytes:
    return cipher().open(io.BytesIO(sealed), "blob under test").read()


sizes = st.sampled_from([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 1, 3 * CHUNK - 1])


@given(size=sizes, fill=st.binary(min_size=1, max_size=1))
def test_any_size_round_trips_around_chunk_boundaries(size: int, fill: bytes) -> None:
    data = (fill * size)[:size]
    sealed = seal(data)
    assert sealed.startswith(MAGIC) and key_id_of(sealed) == "dk-a"
    assert unseal(sealed) == data


@given(data=st.binary(max_size=5 * CHUNK), read=st.integers(1, 3 * CHUNK))
def test_reading_in_any_block_size_gives_the_same_bytes(data: bytes, read: int) -> None:
    opened = cipher().open(io.BytesIO(seal(data)), "blob")
    out = b""
    while block := opened.read(read):
        out += block
    assert out == data


@given(data=st.binary(min_size=1, max_size=3 * CHUNK), where=st.integers(min_value=0))
def test_a_flipped_byte_anywhere_after_the_magic_is_caught(data: bytes, where: int) -> None:
    sealed = bytearray(seal(data))
    at = len(MAGIC) + 2 + where % (len(sealed) - len(MAGIC) - 2)  # key id, prefix, chunks, tags
    sealed[at] ^= 0x01
    with pytest.raises((IntegrityError, DataKeyError)):  # a changed key id names a key we do not have
        unseal(bytes(sealed))


@pytest.mark.parametrize("size", [CHUNK, 2 * CHUNK, 2 * CHUNK + 5])
def test_truncated_or_reordered_chunks_are_caught(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    whole = seal(data)
    header = len(MAGIC) + 2 + len("dk-a") + 8
    body = whole[header:]
    chunks = [body[i : i + CHUNK + 16] for i in range(0, len(body), CHUNK + 16)]
    with pytest.raises(IntegrityError, match="tampered"):
        unseal(whole[:header] + b"".join(chunks[:-1]))  # the last chunk dropped
    if len(chunks) > 1:
        with pytest.raises(IntegrityError, match="tampered"):
            unseal(whole[:header] + b"".join(reversed(chunks)))
    with pytest.raises(IntegrityError):
        unseal(whole[:-1])


def test_plaintext_blobs_pass_through() -> None:
    assert unseal(b"stored before encryption was on") == b"stored before encryption was on"
    assert unseal(b"") == b""


def test_a_blob_opens_with_the_key_it_names_not_the_active_one() -> None:
    assert unseal(seal(b"old", active="dk-b")) == b"old"
