"""The vector index of a model version: item embeddings from that version's item tower, stored beside it.

An index is attached once (``attach_index``), grows by additions (``add_to_index``: each stored as its own
append-only artifact, so a server applies new items without a rebuild) and is replaced whole by
``rebuild_index`` (a new base, the additions dropped, in one transaction: a reader sees the old index with
its additions or the new one, never a mix). ``index_stamp`` is one small row read and changes on every add
and rebuild, so a server polls it and reloads only when it moved. The index must come from the version it
is attached to: an index built from v1's item tower cannot serve v2's user tower.

>>> index = VectorIndex.build(item_ids, item_tower(items), attributes, source=("two_tower", 2))  # doctest: +SKIP
>>> project.models.attach_index("two_tower", 2, index)                                       # doctest: +SKIP
>>> project.models.add_to_index("two_tower", 2, ["new-1"], item_tower(new_items))            # doctest: +SKIP
>>> project.models.index("two_tower", 2).search(user_vectors, k=200)                          # doctest: +SKIP
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from mloop._time import utcnow
from mloop.errors import AlreadyExists, MalformedInput, NotFound
from mloop.models.index_files import delta_bytes, read_delta
from mloop.models.vector_index import VectorIndex
from mloop.registry.queries import RegistryQueries
from mloop.store.schema import ModelIndexRow


class RegistryIndexes(RegistryQueries):
    """Attaching, adding to and rebuilding an index need ``models.register`` on the model (audit events
    ``models.index.attach``, ``models.index.add``, ``models.index.rebuild``); reading it ``models.read``."""

    def attach_index(self, name: str, version: int, index: VectorIndex) -> str:
        """Store ``index`` as the vector index of version ``version`` of ``name``; returns its stamp.
        Refused when the version has one already (replace it with :meth:`rebuild_index`)."""
        return self._store_base(name, version, index, rebuild=False)

    def rebuild_index(self, name: str, version: int, index: VectorIndex) -> str:
        """Replace the version's index (and the additions made since) with ``index``, atomically."""
        return self._store_base(name, version, index, rebuild=True)

    def add_to_index(
        self,
        name: str,
        version: int,
        ids: Sequence[Any] | np.ndarray,
        vectors: np.ndarray,
        attributes: pd.DataFrame | None = None,
    ) -> str:
        """Add items (their embeddings from this version's item tower) to the version's index without a
        rebuild; an id already there is replaced. Returns the new stamp."""
        self._authorize("models.register", f"model:{name}")
        with self._ctx.store.read() as session:
            details = dict(self._index_row(session, name, version).details)
        # Checked as the server's index will check them (dims, NaN, id type), without loading the index.
        probe = VectorIndex(details["dim"], details["metric"], "exact", (name, version))
        probe.add(ids, vectors, attributes)
        if details.get("ids") not in (None, probe.id_kind):
            raise MalformedInput(
                f"The index of {name} v{version} has {details['ids']} ids; got {probe.id_kind} ids {probe.ids[:3].tolist()}."
            )
        digest = self._ctx.artifacts.put_bytes(delta_bytes(ids, vectors, attributes))
        with self._mutate("models.register", f"model:{name}", action="models.index.add", version=version,
                          items=len(probe), artifact=digest) as change:  # fmt: skip
            row = self._index_row(change.session, name, version)
            deltas = [*row.details.get("deltas", []), digest]
            row.details = {**row.details, "deltas": deltas, "added": row.details.get("added", 0) + len(probe)}
            row.updated_at, row.updated_by = utcnow(), self.actor.name
            return _stamp(row)

    def index(self, name: str, version: int) -> VectorIndex:
        """The version's index with every addition applied, loaded from the artifact store."""
        self._authorize("models.read", f"model:{name}")
        with self._ctx.store.read() as session:
            row = self._index_row(session, name, version)
            base, deltas = row.artifact, list(row.details.get("deltas", []))
        index = self._load_base(base)
        for digest in deltas:
            index.add(*read_delta(self._ctx.artifacts.get_bytes(digest)))
        return index

    def index_stamp(self, name: str, version: int) -> str | None:
        """A short string that changes on every addition and rebuild; None when the version has no index."""
        self._authorize("models.read", f"model:{name}")
        with self._ctx.store.read() as session:
            parent = self._model_row(session, name)
            row = session.get(ModelIndexRow, (parent.id, version))
            return None if row is None else _stamp(row)

    def index_info(self, name: str, version: int) -> dict[str, Any]:
        """What ``mloop models index`` shows: ``count`` (items in the base), ``added`` (items added since; an
        id added again counts again), dim, metric, library, additions, stamp."""
        self._authorize("models.read", f"model:{name}")
        with self._ctx.store.read() as session:
            row = self._index_row(session, name, version)
            details = {k: v for k, v in row.details.items() if k != "deltas"}
            return {"model": name, "version": version, **details, "additions": len(row.details.get("deltas", [])),
                    "generation": row.generation, "artifact": row.artifact, "stamp": _stamp(row),
                    "updated_at": row.updated_at.isoformat(), "updated_by": row.updated_by}  # fmt: skip

    # ---- internals -------------------------------------------------------------------------------------

    def _store_base(self, name: str, version: int, index: VectorIndex, *, rebuild: bool) -> str:
        resource = f"model:{name}"
        self._authorize("models.register", resource)
        if not isinstance(index, VectorIndex):
            raise MalformedInput(
                f"Expected a VectorIndex, got {type(index).__name__}; build one with VectorIndex.build(...)."
            )
        if index.source != (name, version):
            built = (
                "no model version (source=None)"
                if index.source is None
                else f"{index.source[0]} v{index.source[1]}"
            )
            raise MalformedInput(
                f"This index was built from {built}, so it cannot serve with {name} v{version}: build it from "
                f"{name} v{version}'s item tower with VectorIndex.build(..., source=({name!r}, {version}))."
            )
        with self._ctx.store.read() as session:  # the version exists (NotFound lists what does)
            self._version_row(session, self._model_row(session, name), version, None)
        digest = self._put_base(index)
        details = {"dim": index.dim, "metric": index.metric, "library": index.library, "ids": index.id_kind,
                   "count": len(index), "added": 0, "deltas": []}  # fmt: skip
        action = "models.index.rebuild" if rebuild else "models.index.attach"
        with self._mutate("models.register", resource, action=action, version=version, artifact=digest,
                          count=len(index)) as change:  # fmt: skip
            parent = self._model_row(change.session, name)
            self._version_row(change.session, parent, version, None)
            row = change.session.get(ModelIndexRow, (parent.id, version))
            if row is None and rebuild:
                raise NotFound(self._no_index(name, version))
            if row is not None and not rebuild:
                raise AlreadyExists(
                    f"{name} v{version} has a vector index already; replace it with "
                    f"project.models.rebuild_index({name!r}, {version}, index)."
                )
            if row is None:
                row = ModelIndexRow(model_id=parent.id, version=version, generation=0)
                change.session.add(row)
            row.artifact, row.details, row.generation = digest, details, row.generation + 1
            row.updated_at, row.updated_by = utcnow(), self.actor.name
            change.session.flush()
            return _stamp(row)

    def _put_base(self, index: VectorIndex) -> str:
        with tempfile.TemporaryDirectory(prefix="mloop-index-") as tmp:
            folder = index.save(Path(tmp) / "index")
            archive = Path(tmp) / "index.tar"
            with tarfile.open(archive, "w") as tar:
                for path in sorted(folder.iterdir()):
                    tar.add(path, arcname=path.name)
            return self._ctx.artifacts.put_file(archive)

    def _load_base(self, digest: str) -> VectorIndex:
        data = self._ctx.artifacts.get_bytes(digest)
        with tempfile.TemporaryDirectory(prefix="mloop-index-") as tmp:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(tmp, filter="data")
            return VectorIndex.load(Path(tmp))

    def _index_row(self, session: Session, name: str, version: int) -> ModelIndexRow:
        parent = self._model_row(session, name)
        row = session.get(ModelIndexRow, (parent.id, version))
        if row is None:
            self._version_row(session, parent, version, None)  # a missing version says so first
            raise NotFound(self._no_index(name, version))
        return row

    @staticmethod
    def _no_index(name: str, version: int) -> str:
        return (
            f"{name} v{version} has no vector index; attach one with project.models.attach_index({name!r}, "
            f"{version}, VectorIndex.build(ids, vectors, source=({name!r}, {version})))."
        )


def _stamp(row: ModelIndexRow) -> str:
    """Generation, base digest and number of additions: changes on every add and every rebuild."""
    return f"{row.generation}.{row.artifact[:12]}.{len(row.details.get('deltas', []))}"
