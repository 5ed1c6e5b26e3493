"""The counterfactual search: growing spheres, then greedy sparsification and shrinking, then a diverse pick.

1. **Growing spheres** (Laugel et al., "Inverse Classification for Comparison-based Interpretability in
   Machine Learning", IPMU 2018): candidates are sampled on shells of growing radius around the row, in
   the space where each feature is measured in its own scale, until a shell holds candidates whose
   prediction is on the wanted side of the threshold. Each candidate moves a random subset of the
   actionable features (at most ``max_changes``), so sparse answers are found directly; every value is
   put on its feature's grid (range, direction, step, allowed categories) before it is scored, so the
   model only ever sees rows an answer could be.
2. **Sparsification** (the same paper's feature selection step): a changed feature is put back to its
   value while the prediction stays across; then each remaining change is **shrunk** towards the row
   (fractions of it) while it stays across. Both run batched across candidates: one model call a round.
3. **Diversity**: answers are picked closest first, skipping those that change a superset of the features
   an earlier answer changes; when fewer than ``k`` differ, the search runs again with a feature of the
   earlier answers held fixed (as DiCE's "diverse" sets do by exclusion).

The model is a black box called with batches of rows; the search is seeded, so the same row gets the same
answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mloop.explain.attributions import ExplainError
from mloop.explain.constraints import Bound

Columns = dict[str, list[Any]]
PredictColumns = Callable[[Columns], Any]
Changes = dict[str, Any]

SAMPLES = 200  # candidates per shell: one model call
FIRST_RADIUS = 0.01  # in scales: a 1% move of a feature's range
GROWTH = 2.0
EXTRA_SHELLS = 1  # shells searched past the first that crosses, for more varied candidates
POLISHED = 24  # candidates sparsified and shrunk per search
SHRINK = (0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.85)
SPARSITY = 0.1  # what changing one more feature costs, in scales: fewer changes first (as DiCE's sparsity)
BUDGET = 60_000  # model rows per row explained


@dataclass(frozen=True)
class Goal:
    """Where an answer's prediction must land: ``below`` the threshold (strictly) or ``above`` it (or on it).

    >>> Goal(0.5, "below").reached(np.array([0.2, 0.7]))
    array([ True, False])
    """

    threshold: float
    want: Literal["below", "above"]

    def reached(self, scores: np.ndarray) -> np.ndarray:
        return scores < self.threshold if self.want == "below" else scores >= self.threshold

    def __str__(self) -> str:
        return f"{self.want} {self.threshold:g}"


class Search:
    """One row's search; holds the model calls made (``evaluations``) and the closest prediction seen."""

    def __init__(
        self,
        predict: PredictColumns,
        row: dict[str, Any],
        bounds: Sequence[Bound],
        goal: Goal,
        *,
        max_changes: int | None = None,
        seed: int = 0,
        budget: int = BUDGET,
    ) -> None:
        self.predict, self.row, self.goal = predict, row, goal
        self.bounds = {b.name: b for b in bounds}
        self.max_changes = max_changes or len(self.bounds)
        self.rng = np.random.default_rng(seed)
        self.budget = budget
        self.evaluations = 0
        self.closest: tuple[float, Changes] | None = None  # (score, changes) nearest the threshold

    def run(self, k: int) -> list[tuple[Changes, float]]:
        """Up to ``k`` diverse answers, closest first, each with its prediction."""
        found = self._polished(frozenset())
        picked = _pick(found, k, self.cost)
        tried: set[frozenset[str]] = set()
        while len(picked) < k and len(tried) < k and self.evaluations < self.budget:
            held = next((h for h in self._to_hold(picked) if h not in tried), None)
            if held is None:
                break
            tried.add(held)
            found += self._polished(held)
            picked = _pick(found, k, self.cost)
        return picked

    def cost(self, changes: Changes) -> float:
        """How much ``changes`` asks of a person: their distance plus :data:`SPARSITY` per feature."""
        return sum(self.bounds[name].cost(value) for name, value in changes.items()) + SPARSITY * len(changes)

    def score(self, batch: list[Changes]) -> np.ndarray:
        columns = {name: [c.get(name, value) for c in batch] for name, value in self.row.items()}
        scores = np.asarray(self.predict(columns), dtype=float)
        if scores.ndim != 1:
            raise ExplainError(
                "Counterfactuals need one score per row (a binary classifier's probability or a "
                f"regressor's value); this model answers shape {scores.shape[1:]} per row."
            )
        self.evaluations += len(batch)
        gap = np.abs(scores - self.goal.threshold)
        i = int(np.argmin(gap))
        if self.closest is None or gap[i] < abs(self.closest[0] - self.goal.threshold):
            self.closest = (float(scores[i]), batch[i])
        return scores

    def _polished(self, held: frozenset[str]) -> list[tuple[Changes, float]]:
        hits = self._spheres(held)
        hits = sorted(hits, key=self.cost)[:POLISHED]
        hits = self._sparsified(hits)
        hits = self._shrunk(hits)
        unique = {tuple(sorted(h.items(), key=lambda kv: kv[0])): h for h in hits if h}
        hits = [h for h in unique.values() if len(h) <= self.max_changes]
        if not hits:
            return []
        scores = self.score(hits)  # the final values' own predictions, not a step before
        return [(h, float(s)) for h, s, ok in zip(hits, scores, self.goal.reached(scores), strict=True) if ok]

    def _spheres(self, held: frozenset[str]) -> list[Changes]:
        free = [b for name, b in self.bounds.items() if name not in held]
        if not free:
            return []
        reach = sum(b.reach for b in free)
        radius, hits, extra = FIRST_RADIUS, [], -1
        while radius <= reach * GROWTH and self.evaluations < self.budget and extra < EXTRA_SHELLS:
            batch = self._sample(free, radius, radius * GROWTH)
            if batch:
                reached = self.goal.reached(self.score(batch))
                hits += [c for c, ok in zip(batch, reached, strict=True) if ok]
            if hits:
                extra += 1
            radius *= GROWTH
        return hits

    def _sample(self, free: list[Bound], inner: float, outer: float) -> list[Changes]:
        """:data:`SAMPLES` candidates on the shell between ``inner`` and ``outer``, each moving a random
        subset of ``free`` (at most ``max_changes``) a random direction; a change of category costs 1, so
        categories move only on shells that far out."""
        n, width = SAMPLES, len(free)
        sizes = self.rng.integers(1, min(self.max_changes, width) + 1, size=n)
        ranks = np.argsort(self.rng.random((n, width)), axis=1).argsort(axis=1)
        chosen = ranks < sizes[:, None]
        category = np.array([b.kind == "category" for b in free])
        if outer < 1.0:
            chosen &= ~category
        numeric = chosen & ~category
        direction = self.rng.normal(size=(n, width)) * numeric
        norms = np.linalg.norm(direction, axis=1, keepdims=True)
        direction = direction / np.where(norms > 0, norms, 1.0) * self.rng.uniform(inner, outer, size=(n, 1))
        batch: list[Changes] = [{} for _ in range(n)]
        for j, b in enumerate(free):
            rows = np.flatnonzero(chosen[:, j])
            if b.kind == "category":
                if b.choices:
                    picks = self.rng.integers(len(b.choices), size=len(rows))
                    for i, pick in zip(rows, picks, strict=True):
                        batch[i][b.name] = b.choices[pick]
                continue
            d = direction[rows, j]
            if b.low >= b.current:  # only up
                d = np.abs(d)
            elif b.high <= b.current:  # only down
                d = -np.abs(d)
            for i, value in zip(rows, b.place_many(float(b.current) + d * b.scale), strict=True):
                if value != b.current:
                    batch[i][b.name] = value
        return [c for c in batch if c]

    def _sparsified(self, hits: list[Changes]) -> list[Changes]:
        """Greedily put back, per candidate and one a round, the change costing most that is not needed."""
        hits = [dict(h) for h in hits]
        while self.evaluations < self.budget:
            batch, owners = [], []
            for i, h in enumerate(hits):
                for name in h:
                    batch.append({n: v for n, v in h.items() if n != name})
                    owners.append((i, name))
            if not batch:
                break
            best: dict[int, str] = {}
            for (i, name), ok in zip(owners, self.goal.reached(self.score(batch)), strict=True):
                saved = self.bounds[name].cost(hits[i][name])
                if ok and (i not in best or saved > self.bounds[best[i]].cost(hits[i][best[i]])):
                    best[i] = name
            if not best:
                break
            for i, name in best.items():
                del hits[i][name]
        return hits

    def _shrunk(self, hits: list[Changes]) -> list[Changes]:
        """Move each numeric change towards the row's value as far as the prediction stays across."""
        hits = [dict(h) for h in hits]
        for _ in range(3):
            batch, owners = [], []
            for i, h in enumerate(hits):
                for name, value in h.items():
                    b = self.bounds[name]
                    if b.kind == "category":
                        continue
                    for t in SHRINK:
                        closer = b.place(b.current + t * (value - b.current))
                        if closer != b.current and b.cost(closer) < b.cost(value):
                            batch.append({**h, name: closer})
                            owners.append((i, name))
            if not batch or self.evaluations >= self.budget:
                break
            best: dict[int, Changes] = {}
            for (i, _name), candidate, ok in zip(
                owners, batch, self.goal.reached(self.score(batch)), strict=True
            ):
                if ok and (i not in best or self.cost(candidate) < self.cost(best[i])):
                    best[i] = candidate
            if not best:
                break
            for i, candidate in best.items():
                hits[i] = candidate
        return hits

    def _to_hold(self, picked: list[tuple[Changes, float]]) -> list[frozenset[str]]:
        """Features to hold fixed in another search, for answers that change something else: each one an
        answer changed, then each answer's whole set."""
        singles = list(dict.fromkeys(name for changes, _ in picked for name in changes))
        holds = [frozenset([name]) for name in singles] + [frozenset(c) for c, _ in picked if len(c) > 1]
        return list(dict.fromkeys(holds))


def _pick(
    found: list[tuple[Changes, float]], k: int, cost: Callable[[Changes], float]
) -> list[tuple[Changes, float]]:
    """Closest first, skipping an answer that changes all the features an earlier one changes: it asks
    more of the person and gets no further. Fewer than ``k`` come back rather than near-copies."""
    picked: list[tuple[Changes, float]] = []
    for changes, score in sorted(found, key=lambda f: (cost(f[0]), sorted(f[0]))):
        if len(picked) < k and not any(set(changes) >= set(p) for p, _ in picked):
            picked.append((changes, score))
    return picked


def distance(changes: Changes, bounds: Sequence[Bound]) -> float:
    """The L1 distance of ``changes``, each feature in its scale; a change of category costs 1."""
    by_name = {b.name: b for b in bounds}
    return float(math.fsum(by_name[n].cost(v) for n, v in changes.items()))
