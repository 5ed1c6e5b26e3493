"""A saved model as one file: the flavour's folder plus ``mloop-model.json``, packed into a gzipped tar.

The archive is deterministic (entries sorted, times, owners and modes fixed, no gzip timestamp), so the
same model saved twice packs to the same bytes and the content-addressed artifact store keeps it once.
Unpacking refuses absolute paths, ``..`` and links (``tarfile``'s ``data`` filter), so a crafted archive
cannot write outside the folder it is unpacked into.

>>> manifest = pack(model, "lightgbm", Path("fraud.tar.gz"))   # doctest: +SKIP
>>> flavour, model = unpack(Path("fraud.tar.gz"), Path("tmp"))  # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import json
import platform
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from mloop._version import __version__
from mloop.errors import MalformedInput
from mloop.models.flavours import Flavour, get_flavour

MANIFEST = "mloop-model.json"
FORMAT = 1


def pack(
    model: Any, flavour: Flavour, target: Path, *, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Save ``model`` with ``flavour`` and pack the result into ``target``; returns the manifest."""
    with tempfile.TemporaryDirectory(prefix="mloop-pack-") as tmp:
        folder = Path(tmp)
        flavour.save(model, folder)
        manifest = {
            "format": FORMAT,
            "flavour": flavour.name,
            "mloop_version": __version__,
            "python_version": platform.python_version(),
            "files": sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()),
            **(extra or {}),
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        with (
            target.open("wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0, filename="") as zipped,
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for path in sorted(folder.rglob("*")):
                _add(tar, path, path.relative_to(folder).as_posix())
    return manifest


def unpack(archive: Path, folder: Path) -> tuple[Flavour, Any]:
    """Unpack ``archive`` into the empty ``folder`` and load the model with the flavour it names."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            tar.extractall(folder, filter="data")
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise MalformedInput(
            f"{archive.name} is not a packed mloop model ({exc}). Register the model again."
        ) from None
    if manifest.get("format", 0) > FORMAT:
        raise MalformedInput(
            f"This model was packed by a newer mloop ({manifest.get('mloop_version')}, format "
            f"{manifest['format']}); upgrade mloop to load it."
        )
    flavour = get_flavour(manifest["flavour"])
    return flavour, flavour.load(folder)


def read_manifest(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive, mode="r:gz") as tar:
        member = tar.extractfile(MANIFEST)
        if member is None:
            raise MalformedInput(f"{archive.name} has no {MANIFEST}: it is not a packed mloop model.")
        return json.loads(member.read())


def _add(tar: tarfile.TarFile, path: Path, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if path.is_dir():
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        return
    info.size, info.mode = path.stat().st_size, 0o644
    with path.open("rb") as handle:  # streamed: a large model is never read whole into memory
        tar.addfile(info, handle)
