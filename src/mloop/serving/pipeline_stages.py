"""The stages of a pipeline endpoint (:mod:`mloop.serving.pipeline`) and the vector indexes they search.

Each model stage calls an ordinary endpoint through :meth:`Inference.predict`, so the version that answers
is the one that endpoint's own traffic policy picks (canary, sticky A/B, shadow copies included) and the
call is logged under that endpoint with request id ``RID/<stage>``. The retrieve stage then searches the
index attached to *that* version: a canary of the user tower searches its own item embeddings.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mloop.config.pipelines import Stage
from mloop.errors import MloopError, SchemaError
from mloop.project import Project

log = logging.getLogger("mloop.serving")


@dataclass
class Candidates:
    """One request row's items so far, best first, and why it has none (or why it fell back)."""

    items: list[Any] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    cold_start: bool = False
    reason: str | None = None


class IndexCache:
    """The vector index of each (model, version) a retrieve stage serves, loaded once per server and
    reloaded off the request path when ``project.models.index_stamp`` changes (an incremental add or a
    rebuild): :meth:`refresh` builds the new index first and swaps the reference in one assignment."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._held: dict[tuple[str, int], tuple[str | None, Any]] = {}
        self._lock = threading.Lock()

    def get(self, model: str, version: int) -> Any:
        found = self._held.get((model, version))
        if found is None:  # first use of a version the poll has not seen yet: load it now, once
            found = self._load(model, version)
        return found[1]

    def source_of(self, model: str, version: int) -> tuple[str, int] | None:
        """Where the index of ``model`` ``version`` was built from, or None when it has none."""
        registry: Any = self.project.models
        if registry.index_stamp(model, version) is None:
            return None
        source = tuple(self.get(model, version).source or ())
        return (str(source[0]), int(source[1])) if len(source) == 2 else ("?", -1)

    def refresh(self, wanted: Sequence[tuple[str, int]]) -> None:
        """Reload the indexes in ``wanted`` whose stamp changed; forget the others."""
        registry: Any = self.project.models
        for key in wanted:
            held = self._held.get(key)
            if held is None or registry.index_stamp(*key) != held[0]:
                self._load(*key)
        for key in set(self._held) - set(wanted):
            self._held.pop(key, None)

    def _load(self, model: str, version: int) -> tuple[str | None, Any]:
        registry: Any = self.project.models
        with self._lock:
            stamp = registry.index_stamp(model, version)
            if stamp is None:
                raise MloopError(
                    f"{model!r} v{version} has no vector index, so the retrieve stage cannot search: attach one "
                    f"(project.models.attach_index({model!r}, {version}, index)) or deploy a version with one."
                )
            loaded = (stamp, registry.index(model, version))
            self._held[(model, version)] = loaded  # one assignment: requests see the old or the new index
            return loaded


def embeddings(predictions: Sequence[Any]) -> np.ndarray:
    """The user tower's answers as a float32 matrix (one row per request row)."""
    rows = [np.asarray(p, dtype=np.float32).reshape(-1) for p in predictions]
    return np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def search(index: Any, queries: np.ndarray, stage: Stage, where: Mapping[str, Any]) -> list[Candidates]:
    """The index's best ``k`` per row (all items when ``k`` is above its size), filtered by ``where``."""
    k = min(stage.k, max(len(index), 1))
    hits = index.search(queries, k, where=dict(where) or None)
    found = []
    for hit in hits:
        ids, scores = list(np.asarray(hit.ids).tolist()), [float(s) for s in np.asarray(hit.scores)]
        reason = (
            None if ids else f"no item matches the filter {dict(where)}" if where else "the index is empty"
        )
        found.append(Candidates(ids, scores, reason=reason))
    return found


def is_cold(exc: MloopError) -> bool:
    """A tower call failed because the user's features are missing (null after the lookup): cold start."""
    return isinstance(exc, SchemaError) and "null" in str(exc)


def rank_rows(
    rows: Sequence[Mapping[str, Any]], found: Sequence[Candidates], item_key: str
) -> tuple[list[dict[str, Any]], list[int]]:
    """One ranker row per candidate: the request row's fields (the user's keys) with the item's key, its
    retrieval score and position; and the request row each belongs to."""
    out, owner = [], []
    for i, (row, cands) in enumerate(zip(rows, found, strict=True)):
        for position, (item, score) in enumerate(zip(cands.items, cands.scores, strict=True)):
            out.append({**row, item_key: item, "retrieval_score": score, "retrieval_rank": position})
            owner.append(i)
    return out, owner


def reorder(found: list[Candidates], owner: Sequence[int], predictions: Sequence[Any]) -> None:
    """Give each candidate its ranker score and sort every row's candidates by it, best first (ties keep
    the retrieval order)."""
    scored: dict[int, list[float]] = {}
    for row, prediction in zip(owner, predictions, strict=True):
        value = prediction[-1] if isinstance(prediction, list) else prediction  # a classifier's last class
        scored.setdefault(row, []).append(float(value) if value is not None else float("-inf"))
    for row, cands in enumerate(found):
        scores = scored.get(row)
        if not scores:
            continue
        order = sorted(range(len(scores)), key=lambda j: -scores[j])
        cands.items = [cands.items[j] for j in order]
        cands.scores = [scores[j] for j in order]


def id_list(value: Any) -> list[Any]:
    """Item ids held by a feature: a list, or a comma-separated string ("3,17,42"); none when null."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple | np.ndarray):
        return list(value)
    return [value]


def excluded_ids(value: Any) -> set[str]:
    """:func:`id_list` as strings, to compare with any item id."""
    return {str(v) for v in id_list(value)}


def top(cands: Candidates, n: int, drop: set[str], dedupe: bool) -> None:
    """Keep the best ``n`` items, leaving out ``drop`` and (``dedupe``) repeats; say why when none is left."""
    items, scores, seen = [], [], set()
    for item, score in zip(cands.items, cands.scores, strict=True):
        key = str(item)
        if key in drop or (dedupe and key in seen):
            continue
        seen.add(key)
        items.append(item)
        scores.append(score)
        if len(items) == n:
            break
    if cands.items and not items and cands.reason is None:
        cands.reason = "every candidate was excluded (purchased or listed in the request)"
    cands.items, cands.scores = items, scores


def sampled(stage: Stage | None) -> bool:
    """Whether this request's call to ``stage`` is logged (its ``log`` option)."""
    if stage is None or stage.log is True:
        return True
    return stage.log == "sample" and random.random() < stage.sample
