"""Approximate nearest-neighbour backends of :class:`mloop.models.vector_index.VectorIndex`.

A backend holds a graph over the index's rows ("slots" 0, 1, 2, ... in the order they were added) and
answers the best slots for each query, only among the allowed ones when it is given a mask. The vectors,
ids, attributes and exact search stay in the index: a backend only makes search fast. Backends are looked
up by name in :data:`LIBRARIES` and import their library lazily.

Why faiss (HNSW) and not usearch or hnswlib: docs/decisions.md (the vector index) (measured with
``benchmarks/vector_index.py``).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from mloop.errors import BackendNotInstalled, MloopError

# HNSW settings: recall@100 0.999 on 100k clustered 64-d vectors in benchmarks/vector_index.py, where
# ef 128 answered ~8x faster than ef 200 for the same recall; ef grows with k (and with a filter's selectivity).
LINKS = 32
EF_BUILD = 100
EF_SEARCH = 128


class AnnBackend(Protocol):
    """The seam: add rows, search them (optionally among allowed slots), round-trip through bytes."""

    library: str

    def add(self, vectors: np.ndarray) -> None:
        """Append ``vectors`` (float32, C-contiguous) as the next slots."""

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(slots, scores)``, each ``(len(queries), k)``, best first, higher is better; slot -1 pads a
        row when fewer than ``k`` slots are allowed. ``allowed`` is a bool mask over slots, or None."""

    def to_bytes(self) -> bytes: ...


class FaissBackend:
    """faiss ``IndexHNSWFlat``: inner product (``ip``, ``cosine`` on normalized rows) or squared L2,
    whose scores this backend negates so that higher is better for every metric."""

    library = "faiss"

    def __init__(self, dim: int, metric: str, *, index: Any = None) -> None:
        faiss = _faiss()
        self._l2 = metric == "l2"
        if index is None:
            kind = faiss.METRIC_L2 if self._l2 else faiss.METRIC_INNER_PRODUCT
            index = faiss.IndexHNSWFlat(dim, LINKS, kind)
            index.hnsw.efConstruction = EF_BUILD
        self._index = index

    @classmethod
    def from_bytes(cls, data: bytes, dim: int, metric: str) -> FaissBackend:
        faiss = _faiss()
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if index.d != dim:
            raise MloopError(f"The stored faiss index has {index.d} dimensions, its manifest says {dim}.")
        return cls(dim, metric, index=index)

    def add(self, vectors: np.ndarray) -> None:
        self._index.add(vectors)

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        # A filter lowers the share of the graph that counts: the walk looks 1/share wider to keep recall
        # (0.95 at recall@100 with a 22% filter in benchmarks/vector_index.py; sparser filters never get here).
        share = 1.0 if allowed is None else max(float(allowed.mean()), 1e-6)
        ef = int(min(max(EF_SEARCH, k) / share, 4096))
        if allowed is None:
            params = faiss.SearchParametersHNSW(efSearch=ef)
        else:
            bits = np.packbits(allowed, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
            params = faiss.SearchParametersHNSW(efSearch=ef, sel=selector)
        scores, slots = self._index.search(queries, k, params=params)
        if self._l2:
            scores = -scores
        return slots, scores

    def to_bytes(self) -> bytes:
        return bytes(_faiss().serialize_index(self._index))


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise BackendNotInstalled(
            "The vector index's library 'faiss' is not installed: pip install 'mloop[recsys]' (faiss-cpu), "
            "or build the index with library='exact' (brute force: exact, slower on large indexes)."
        ) from None
    return faiss


LIBRARIES = ("faiss", "exact")


def new_backend(library: str, dim: int, metric: str) -> AnnBackend | None:
    """The backend named ``library``; None for ``exact`` (the index searches by brute force)."""
    if library == "faiss":
        return FaissBackend(dim, metric)
    if library == "exact":
        return None
    raise MloopError(f"Vector index library {library!r} is not one of: {', '.join(LIBRARIES)}.")


def backend_from_bytes(library: str, data: bytes, dim: int, metric: str) -> AnnBackend | None:
    if library == "faiss":
        return FaissBackend.from_bytes(data, dim, metric)
    return new_backend(library, dim, metric)
