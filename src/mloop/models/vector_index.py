"""A vector index over item embeddings: top-k search by inner product, cosine or L2, with filters on item
attributes, incremental adds, and save/load to one folder.

Search is approximate (faiss HNSW, ``pip install 'mloop[recsys]'``) with exact brute-force search always
there: as the library ``"exact"``, as the oracle tests measure recall against, and as the path a very
selective filter takes (the matching rows are few, so scanning them is both exact and fast).

>>> index = VectorIndex.build(["a", "b", "c"], vectors, attributes=items, source=("two_tower", 1))  # doctest: +SKIP
>>> hits = index.search(user_vectors, k=100, where={"category": "books", "in_stock": True})       # doctest: +SKIP
>>> hits[0].ids, hits[0].scores                                                                  # doctest: +SKIP
>>> index.add(["d"], new_vectors, attributes=new_items)   # an id already there is replaced   # doctest: +SKIP
>>> index.save("index/"); VectorIndex.load("index/")                                             # doctest: +SKIP
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import MalformedInput, MloopError
from mloop.models.ann import AnnBackend, backend_from_bytes, new_backend
from mloop.models.index_files import from_npy, npy, parquet, read_folder, write_folder

METRICS = ("ip", "cosine", "l2")
FORMAT = 1  # of the saved folder
# A filter matching at most this many rows (or this share of them) is answered by exact search over them:
# a graph walk that must skip most of what it meets loses recall (0.59 at recall@100 for a 22% filter at
# the unfiltered breadth) or, made wide enough to keep it, costs more than scanning the matches
# (benchmarks/vector_index.py; docs/decisions.md (the vector index)).
EXACT_ROWS = 20_000
EXACT_SHARE = 0.25
# An index of at most this many items is scanned, filter or not: the scan is about as fast as the graph
# walk there, and exact where a graph is weakest (many tied or duplicate vectors, which HNSW can miss).
SCAN_BELOW = 4_096
# Inner product in this many dimensions or fewer is scanned at any size: there the graph cannot reach all of
# the extreme points a query's best items are (worst recall 0.92-0.93 on 131k clustered 2-d or 3-d vectors,
# 0.97 at 4-d), and a scan of so few dimensions is cheap (< 0.7 ms a query at 131k rows):
# benchmarks/vector_index_dims.py; docs/decisions.md (inner product in few dimensions).
IP_SCAN_DIMS = 3


@dataclass(frozen=True)
class Hits:
    """The answer to one query: item ids and their scores, best first (higher is better; for ``l2`` the
    score is minus the squared distance). Shorter than ``k`` when fewer items match."""

    ids: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


class VectorIndex:
    """Item vectors with their ids (ints or strings, kept as given) and optional attributes, searchable.

    Build with :meth:`build`; ``source`` is the ``(model name, version)`` whose item tower made the vectors,
    so the registry can refuse to serve it beside another version's user tower.
    """

    def __init__(self, dim: int, metric: str, library: str, source: tuple[str, int] | None) -> None:
        if metric not in METRICS:
            raise MloopError(f"Vector index metric {metric!r} is not one of: {', '.join(METRICS)}.")
        if dim < 1:
            raise MalformedInput(f"A vector index needs vectors of at least 1 dimension, got {dim}.")
        self.dim, self.metric, self.library = int(dim), metric, library
        self.source = None if source is None else (str(source[0]), int(source[1]))
        self._ann: AnnBackend | None = new_backend(library, self.dim, metric)
        self._vectors = np.empty((0, self.dim), dtype=np.float32)
        self._ids: np.ndarray = np.empty(0, dtype=np.int64)
        self._alive = np.empty(0, dtype=bool)  # False: replaced by a later add of the same id
        self._attributes: pd.DataFrame | None = None
        self._slot: dict[Any, int] = {}
        self._id_kind: str | None = None  # "int" or "str", fixed by the first rows

    # ---- building --------------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        ids: Sequence[Any] | np.ndarray,
        vectors: np.ndarray,
        attributes: pd.DataFrame | None = None,
        *,
        metric: str = "ip",
        source: tuple[str, int] | None = None,
        library: str = "faiss",
    ) -> VectorIndex:
        """An index of ``vectors`` (one row per id). ``attributes`` has one row per id, in the same order
        (or indexed by the ids), with the columns ``search(where=...)`` filters on. ``metric`` is ``ip``,
        ``cosine`` or ``l2``; ``library`` is ``faiss`` (approximate, fast) or ``exact`` (brute force)."""
        matrix = np.asarray(vectors)
        if matrix.ndim != 2:
            raise MalformedInput(
                f"Vectors must be a 2-d array (items x dimensions), got shape {matrix.shape}."
            )
        index = cls(matrix.shape[1], metric, library, source)
        index.add(ids, matrix, attributes)
        return index

    def add(
        self, ids: Sequence[Any] | np.ndarray, vectors: np.ndarray, attributes: pd.DataFrame | None = None
    ) -> None:
        """Add items; an id already in the index is replaced (its old vector and attributes no longer
        match any search). ``attributes`` as in :meth:`build`."""
        keys, kind = self._check_ids(ids)
        matrix = self._check_vectors(vectors, "item vectors")
        if len(keys) != len(matrix):
            raise MalformedInput(f"Got {len(keys)} ids for {len(matrix)} vectors; give one id per row.")
        attrs = self._check_attributes(attributes, keys)
        if len(keys) == 0:
            return
        if len(self._ids) == 0:
            self._ids = self._ids.astype(keys.dtype)
        self._id_kind = kind
        start = len(self._ids)
        for offset, key in enumerate(keys.tolist()):
            old = self._slot.get(key)
            if old is not None:
                self._alive[old] = False
            self._slot[key] = start + offset
        self._vectors = np.concatenate([self._vectors, matrix])
        self._ids = np.concatenate([self._ids, keys])
        self._alive = np.concatenate([self._alive, np.ones(len(keys), dtype=bool)])
        if attrs is not None or self._attributes is not None:
            self._attributes = pd.concat(
                [self._attribute_frame(start), _blank(len(keys)) if attrs is None else attrs],
                ignore_index=True,
            )
        if self._ann is not None:
            self._ann.add(matrix)

    # ---- reading ---------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._slot)

    def __repr__(self) -> str:
        return (f"VectorIndex({len(self)} items, dim={self.dim}, metric={self.metric!r}, "
                f"library={self.library!r}, source={self.source})")  # fmt: skip

    @property
    def ids(self) -> np.ndarray:
        """The ids in the index (each once, in the order they were last added)."""
        return self._ids[self._alive]

    @property
    def id_kind(self) -> str | None:
        """``"int"`` or ``"str"``: the type of the ids (fixed by the first add); None while empty."""
        return self._id_kind

    @property
    def attributes(self) -> pd.DataFrame | None:
        """The attributes of :attr:`ids`, one row each (None when the index has none)."""
        if self._attributes is None:
            return None
        return self._attributes[self._alive].reset_index(drop=True)

    def vectors(self) -> np.ndarray:
        """The vectors of :attr:`ids` as stored (normalized for ``cosine``)."""
        return self._vectors[self._alive]

    def search(
        self, queries: np.ndarray, k: int, where: Mapping[str, Any] | None = None, *, exact: bool = False
    ) -> list[Hits]:
        """The ``k`` best items for each query row (a 1-d array is one query), among the items whose
        attributes match ``where`` (``{"category": "books", "in_stock": True}``; a list means "one of").
        ``k`` above the number of matching items answers them all; no match answers empty hits.
        ``exact=True`` scans every matching item (the oracle)."""
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise MalformedInput(f"k must be a positive whole number of items, got {k!r}.")
        matrix = self._check_vectors(queries, "query vectors", single=True)
        allowed = self._alive if where is None else self._alive & self._match(where)
        count = int(allowed.sum())
        take = min(int(k), count)
        if take == 0:
            empty = Hits(self._ids[:0], np.empty(0, dtype=np.float32))
            return [empty for _ in range(len(matrix))]
        share = count / max(len(allowed), 1)
        if (
            exact
            or self._ann is None
            or len(allowed) <= SCAN_BELOW
            or (self.metric == "ip" and self.dim <= IP_SCAN_DIMS)
            or (where is not None and (count <= EXACT_ROWS or share <= EXACT_SHARE))
        ):
            slots, scores = self._exact(matrix, take, np.flatnonzero(allowed))
        else:
            slots, scores = self._ann.search(matrix, take, None if count == len(allowed) else allowed)
        return [
            self._hits(row_slots, row_scores) for row_slots, row_scores in zip(slots, scores, strict=True)
        ]

    # ---- internals -------------------------------------------------------------------------------------

    def _exact(self, queries: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        subset = self._vectors if len(rows) == len(self._vectors) else self._vectors[rows]
        scores = queries @ subset.T
        if self.metric == "l2":  # -|q - v|^2, higher is better
            scores = 2 * scores - (subset * subset).sum(axis=1) - (queries * queries).sum(axis=1)[:, None]
        top = (
            np.argpartition(-scores, k - 1, axis=1)[:, :k]
            if k < scores.shape[1]
            else np.tile(np.arange(scores.shape[1]), (len(queries), 1))
        )
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        return rows[np.take_along_axis(top, order, axis=1)], np.take_along_axis(top_scores, order, axis=1)

    def _hits(self, slots: np.ndarray, scores: np.ndarray) -> Hits:
        found = slots >= 0
        return Hits(self._ids[slots[found]], np.asarray(scores[found], dtype=np.float32))

    def _match(self, where: Mapping[str, Any]) -> np.ndarray:
        frame = self._attributes
        if frame is None:
            raise MalformedInput(
                f"This index has no attributes to filter on (where={dict(where)}); build it with "
                "attributes=DataFrame(...) holding those columns."
            )
        mask = np.ones(len(frame), dtype=bool)
        for column, wanted in where.items():
            if column not in frame.columns:
                raise MalformedInput(
                    f"The index has no attribute {column!r} to filter on; its attributes: "
                    f"{', '.join(map(str, frame.columns))}."
                )
            values = frame[column]
            if isinstance(wanted, list | tuple | set | frozenset | np.ndarray):
                mask &= values.isin(list(wanted)).to_numpy()
            else:
                mask &= (values == wanted).fillna(False).to_numpy(dtype=bool)
        return mask

    def _check_ids(self, ids: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, str]:
        keys = np.asarray(ids)
        if keys.ndim != 1:
            raise MalformedInput(f"Ids must be a flat list, got an array of shape {keys.shape}.")
        if keys.dtype.kind in "iu":
            kind, keys = "int", keys.astype(np.int64)
        elif keys.dtype.kind in "UO" and all(isinstance(key, str) for key in keys.tolist()):
            kind, keys = "str", keys.astype(object)
        elif len(keys) == 0:
            return self._ids[:0], self._id_kind or "int"
        else:
            raise MalformedInput(
                f"Ids must be all ints or all strings, got {keys.dtype} ({keys[:3].tolist()})."
            )
        if self._id_kind is not None and kind != self._id_kind:
            raise MalformedInput(
                f"This index's ids are {self._id_kind}s; got {kind} ids {keys[:3].tolist()}."
            )
        unique, counts = np.unique(keys, return_counts=True)
        if len(unique) != len(keys):
            raise MalformedInput(
                f"Ids must be unique within one call; repeated: {unique[counts > 1][:5].tolist()}."
            )
        return keys, kind

    def _check_vectors(self, vectors: np.ndarray, what: str, *, single: bool = False) -> np.ndarray:
        matrix = np.asarray(vectors, dtype=np.float32)
        if single and matrix.ndim == 1:
            matrix = matrix[None, :]
        if matrix.ndim != 2 or matrix.shape[1] != self.dim:
            got = matrix.shape[-1] if matrix.ndim else 0
            raise MalformedInput(
                f"The {what} have {got} dimensions (shape {matrix.shape}) but this index holds {self.dim}-d "
                f"vectors; embed them with the model version the index was built from ({self.source})."
            )
        bad = ~np.isfinite(matrix).all(axis=1)
        if bad.any():
            raise MalformedInput(
                f"The {what} hold NaN or infinite values in {int(bad.sum())} row(s) (first: row "
                f"{int(np.flatnonzero(bad)[0])}); fix or drop those rows."
            )
        if self.metric == "cosine":
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            if (norms == 0).any():
                raise MalformedInput(f"The {what} hold an all-zero row, which has no direction for cosine.")
            matrix = matrix / norms
        return np.ascontiguousarray(matrix)

    def _check_attributes(self, attributes: pd.DataFrame | None, keys: np.ndarray) -> pd.DataFrame | None:
        if attributes is None:
            return None
        if not isinstance(attributes, pd.DataFrame) or len(attributes) != len(keys):
            raise MalformedInput(
                f"Attributes must be a DataFrame with one row per id ({len(keys)}), got "
                f"{len(attributes) if isinstance(attributes, pd.DataFrame) else type(attributes).__name__}."
            )
        if not isinstance(attributes.index, pd.RangeIndex) and set(attributes.index) == set(keys.tolist()):
            attributes = attributes.loc[keys.tolist()]  # indexed by the ids: put them in the ids' order
        return attributes.reset_index(drop=True)

    def _attribute_frame(self, rows: int) -> pd.DataFrame:
        return self._attributes if self._attributes is not None else pd.DataFrame(index=pd.RangeIndex(rows))

    def save(self, folder: str | Path) -> Path:
        """Write the index to ``folder``, replaced whole (see :mod:`mloop.models.index_files`)."""
        ids = self._ids.astype(str) if self._ids.dtype.kind == "O" else self._ids
        files = {"ids.npy": npy(ids), "vectors.npy": npy(self._vectors), "alive.npy": npy(self._alive)}
        if self._attributes is not None:
            files["attributes.parquet"] = parquet(self._attributes)
        if self._ann is not None:
            files["ann.bin"] = self._ann.to_bytes()
        source = None if self.source is None else {"model": self.source[0], "version": self.source[1]}
        manifest = {"format": FORMAT, "dim": self.dim, "metric": self.metric, "library": self.library,
                    "count": len(self), "rows": len(self._ids), "source": source}  # fmt: skip
        return write_folder(Path(folder), files, manifest)

    @classmethod
    def load(cls, folder: str | Path) -> VectorIndex:
        """The index saved in ``folder``; a file that fails its checksum raises ``IntegrityError``."""
        manifest, data = read_folder(Path(folder))
        if manifest.get("format") != FORMAT:
            raise MalformedInput(
                f"The vector index in {folder} has format {manifest.get('format')}; this mloop reads {FORMAT}."
            )
        source = manifest["source"]
        index = cls(
            manifest["dim"], manifest["metric"], "exact", source and (source["model"], source["version"])
        )
        index.library = manifest["library"]
        ids = from_npy(data["ids.npy"])
        index._ids = ids.astype(object) if ids.dtype.kind == "U" else ids
        index._vectors, index._alive = from_npy(data["vectors.npy"]), from_npy(data["alive.npy"])
        if "attributes.parquet" in data:
            index._attributes = pd.read_parquet(io.BytesIO(data["attributes.parquet"]))
        index._ann = backend_from_bytes(index.library, data.get("ann.bin", b""), index.dim, index.metric)
        index._id_kind = None if len(ids) == 0 else ("int" if ids.dtype.kind in "iu" else "str")
        index._slot = {key: slot for slot, key in enumerate(index._ids.tolist()) if index._alive[slot]}
        return index


def _blank(rows: int) -> pd.DataFrame:
    """Rows of missing attributes for items added without any."""
    return pd.DataFrame(index=pd.RangeIndex(rows))
