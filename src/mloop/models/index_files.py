"""The files of a :class:`~mloop.models.vector_index.VectorIndex` on disk: one folder, written whole or
not at all.

The folder holds ``manifest.json`` (format, dim, metric, library, count, source model and version, and
the sha256 of every other file), ``vectors.npy``, ``ids.npy``, ``alive.npy``, ``attributes.parquet``
(when the index has attributes) and ``ann.bin`` (the library's graph, so loading does not rebuild it).
It is written into a temporary folder beside the target, each file fsynced, then renamed into place; an
existing folder is moved aside first and removed after, so a crash leaves the old index or the new one.

Additions travel as a *delta* (:func:`delta_bytes`): the ids, vectors and attributes of one ``add``, in one
``.npz``; the registry stores them append-only and applies them in order on load.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import IntegrityError, MalformedInput, NotFound

MANIFEST = "manifest.json"


def write_folder(folder: Path, files: dict[str, bytes], manifest: dict[str, Any]) -> Path:
    """Write ``files`` and ``manifest.json`` (``manifest`` plus every file's sha256) to ``folder``, replacing
    what was there whole (see the module's docstring)."""
    folder = Path(folder)
    if not folder.parent.is_dir():
        raise MalformedInput(f"Cannot save the index to {folder}: the folder {folder.parent} does not exist.")
    token = secrets.token_hex(6)
    tmp = folder.parent / f".{folder.name}.{token}.tmp"
    tmp.mkdir()
    try:
        digests = {name: _write(tmp / name, data) for name, data in files.items()}
        _write(tmp / MANIFEST, json.dumps({**manifest, "files": digests}, indent=2).encode())
        old = folder.parent / f".{folder.name}.{token}.old"
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def read_folder(folder: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and files written by :func:`write_folder`, each file checked against its checksum."""
    folder = Path(folder)
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise NotFound(
            f"No vector index in {folder}: it has no {MANIFEST}; save one with index.save()."
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError(
            f"The vector index in {folder} is corrupted: {MANIFEST} is not JSON ({exc})."
        ) from None
    return manifest, {name: _read(folder, name, digest) for name, digest in manifest["files"].items()}


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


def from_npy(data: bytes) -> np.ndarray:
    array: np.ndarray = np.load(io.BytesIO(data), allow_pickle=False)
    return array


def parquet(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()


def delta_bytes(ids: Any, vectors: np.ndarray, attributes: pd.DataFrame | None) -> bytes:
    """One addition (ids, vectors, attributes) as ``.npz`` bytes, read back by :func:`read_delta`."""
    keys = np.asarray(ids)
    arrays: dict[str, np.ndarray] = {
        "ids": keys.astype(str) if keys.dtype.kind == "O" else keys,
        "vectors": np.asarray(vectors, dtype=np.float32),
    }
    if attributes is not None:
        arrays["attributes"] = np.frombuffer(parquet(attributes.reset_index(drop=True)), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, **arrays)  # type: ignore[arg-type]  # numpy stubs read the first key as allow_pickle
    return out.getvalue()


def read_delta(data: bytes) -> tuple[np.ndarray, np.ndarray, pd.DataFrame | None]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        ids = npz["ids"]
        attributes = pd.read_parquet(io.BytesIO(npz["attributes"].tobytes())) if "attributes" in npz else None
        return (ids.astype(object) if ids.dtype.kind == "U" else ids), npz["vectors"], attributes


# ---- internals -----------------------------------------------------------------------------------------


def _write(path: Path, data: bytes) -> str:
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return hashlib.sha256(data).hexdigest()


def _read(folder: Path, name: str, digest: str) -> bytes:
    try:
        data = (folder / name).read_bytes()
    except FileNotFoundError:
        raise IntegrityError(
            f"The vector index in {folder} is incomplete: {name} is missing; save or rebuild the index."
        ) from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise IntegrityError(
            f"The vector index in {folder} is corrupted: {name} does not match its checksum in {MANIFEST}; "
            "save or rebuild the index."
        )
    return data
