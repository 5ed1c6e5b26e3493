"""Global importance: how much a model relies on each feature across a data set, and how that moves.

A feature's importance is its mean |attribution| over the rows (:meth:`Attributions.mean_abs`); its
**share** is that over the sum of all features' importances. Shares are what versions and windows are
compared on: they add up to 1 whatever the output space or scale (a retrained model's log-odds may be
larger everywhere), so "v2 relies 38% more on `amount`" means amount's share of the total |attribution|
grew by 38% (0.21 to 0.29), not that its raw attributions did.

The rows explained are a seeded sample of at most :data:`SAMPLE_ROWS`: TreeSHAP costs about 1 ms a row
for 100 trees of 31 leaves on 20 features (a hundred times predict), it runs at every registration and
gate, and the shares of 500 rows move by a few percentage points between samples (total variation under
0.06 in benchmarks/explain_global.py, against the alert threshold of 0.1). A model-agnostic method costs
more still.

>>> found = Importance.of(loaded.attributions(sample(holdout)))             # doctest: +SKIP
>>> found.shares                                                            # doctest: +SKIP
{'amount': 0.41, 'merchant_risk': 0.33, 'hour': 0.26}
>>> [s.sentence("v2") for s in shift(old.shares, found.shares)][:1]        # doctest: +SKIP
['v2 relies 38% more on `amount` (share 21.0% -> 29.0%)']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mloop.explain.attributions import Attributions, ExplainError, explain

SAMPLE_ROWS = 500
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Importance:
    """Mean |attribution| per feature over ``rows`` rows, largest first, in the ``output`` space."""

    mean_abs: dict[str, float]
    method: str
    output: str
    rows: int

    @classmethod
    def of(cls, attributions: Attributions) -> Importance:
        found = attributions.mean_abs()
        ordered = dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))
        return cls(ordered, attributions.method, attributions.output, len(attributions))

    @property
    def shares(self) -> dict[str, float]:
        """Each feature's share of the total mean |attribution| (all 0 when every attribution is 0)."""
        return shares(self.mean_abs)

    def to_dict(self) -> dict[str, Any]:
        """As stored in a model card's ``importance`` facts."""
        return {"mean_abs": dict(self.mean_abs), "shares": self.shares, "method": self.method,
                "output": self.output, "rows": self.rows}  # fmt: skip


def shares(mean_abs: Mapping[str, float]) -> dict[str, float]:
    """``mean_abs`` divided by its total, in the same order."""
    total = float(sum(abs(v) for v in mean_abs.values()))
    return {str(k): (abs(float(v)) / total if total > 0 else 0.0) for k, v in mean_abs.items()}


def sample(frame: pd.DataFrame, rows: int = SAMPLE_ROWS, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame``, drawn without replacement with ``seed``, in their order."""
    if len(frame) <= rows:
        return frame
    keep = np.sort(np.random.default_rng(seed).choice(len(frame), rows, replace=False))
    return frame.iloc[keep]


def on_holdout(
    flavour: str, model: Any, holdout: pd.DataFrame, *, seed: int = DEFAULT_SEED, rows: int = SAMPLE_ROWS
) -> dict[str, Any]:
    """The card's ``importance`` facts for ``model`` on (a seeded sample of) its holdout; a model that
    cannot be explained gets ``{"note": why}`` instead, so registering it never fails because of this."""
    return measure(lambda frame: explain(flavour, model, frame), holdout, seed=seed, rows=rows)


def measure(
    attribute: Callable[[pd.DataFrame], Attributions],
    frame: pd.DataFrame,
    *,
    seed: int = DEFAULT_SEED,
    rows: int = SAMPLE_ROWS,
) -> dict[str, Any]:
    """:meth:`Importance.to_dict` of ``attribute(sample(frame))`` (e.g. ``loaded.attributions``), with the
    sample's size and seed; ``{"note": why}`` when there is nothing to explain or no explainer."""
    if frame.empty:
        return {"note": "no rows to explain"}
    chosen = sample(frame, rows, seed)
    try:
        found = Importance.of(attribute(chosen))
    except ExplainError as exc:  # no explainer for the flavour, or no budget for the fallback
        return {"note": f"not computed: {exc}"}
    return {**found.to_dict(), "sample": {"rows": len(chosen), "of": len(frame), "seed": seed}}


@dataclass(frozen=True)
class FeatureShift:
    """One feature's share of total |attribution| before and after."""

    feature: str
    before: float
    after: float

    @property
    def change(self) -> float:
        """``after - before``: the move in share, in [-1, 1]; what ``Gate(max_importance_shift=)`` bounds."""
        return self.after - self.before

    @property
    def relative(self) -> float | None:
        """``after / before - 1``, None for a feature the old model did not use at all."""
        return self.after / self.before - 1 if self.before > 0 else None

    def sentence(self, who: str) -> str:
        """``"v2 relies 38% more on `amount` (share 21.0% -> 29.0%)"``."""
        moved = f"share {self.before:.1%} -> {self.after:.1%}"
        if self.relative is None:
            return f"{who} relies on `{self.feature}`, which the version it replaces did not use ({moved})"
        if abs(self.relative) < 0.005:
            return f"{who} relies as much on `{self.feature}` ({moved})"
        word = "more" if self.relative > 0 else "less"
        return f"{who} relies {abs(self.relative):.0%} {word} on `{self.feature}` ({moved})"

    def to_dict(self, who: str) -> dict[str, Any]:
        return {"feature": self.feature, "before": self.before, "after": self.after, "change": self.change,
                "relative": self.relative, "sentence": self.sentence(who)}  # fmt: skip


def shift(before: Mapping[str, float], after: Mapping[str, float]) -> list[FeatureShift]:
    """Per feature of either table, its share before and after (0 where a table lacks it), the largest
    absolute move first."""
    names = list(dict.fromkeys([*after, *before]))
    moves = [FeatureShift(n, float(before.get(n, 0.0)), float(after.get(n, 0.0))) for n in names]
    return sorted(moves, key=lambda m: (-abs(m.change), m.feature))


def total_variation(before: Mapping[str, float], after: Mapping[str, float]) -> float:
    """Half the sum of the absolute share changes: the share of the total |attribution| that moved from
    some features to others, in [0, 1]."""
    return 0.5 * sum(abs(m.change) for m in shift(before, after))


def card_lines(facts: Mapping[str, Any] | None) -> list[str]:
    """The card's "Global importance" section: features by importance, with their shares."""
    if not facts:
        return ["not recorded"]
    if "mean_abs" not in facts:
        return [f"not recorded ({facts.get('note') or 'no reason given'})"]
    taken = facts.get("sample") or {}
    source = (
        f"{facts.get('rows', '?'):,} holdout rows" if isinstance(facts.get("rows"), int) else "the holdout"
    )
    if taken.get("of", 0) > taken.get("rows", 0):
        source += f" (a seeded sample of {taken['of']:,}, seed {taken.get('seed', DEFAULT_SEED)})"
    lines = [f"Mean |attribution| ({facts.get('method')}, in {facts.get('output')}) over {source}.", "",
             "| feature | mean abs attribution | share |", "|---|---|---|"]  # fmt: skip
    share = facts.get("shares") or shares(facts["mean_abs"])
    for name, value in sorted(facts["mean_abs"].items(), key=lambda kv: -float(kv[1])):
        lines.append(f"| {name} | {float(value):.4g} | {float(share.get(name, 0.0)):.1%} |")
    return lines


def versus(
    new: Callable[[pd.DataFrame], Attributions],
    old: Callable[[pd.DataFrame], Attributions],
    frame: pd.DataFrame,
    *,
    who: str,
    seed: int = DEFAULT_SEED,
    rows: int = SAMPLE_ROWS,
) -> dict[str, Any]:
    """How ``new``'s reliance on each feature moved against ``old``'s on the same sampled rows of ``frame``
    (``who`` names the new version in the sentences): ``{"shifts": [...], "largest": {...}, "rows": n}``,
    the largest move first; ``{"note": why}`` when either cannot be explained."""
    after, before = measure(new, frame, seed=seed, rows=rows), measure(old, frame, seed=seed, rows=rows)
    for name, found in (("challenger", after), ("champion", before)):
        if "note" in found:
            return {"note": f"the {name}'s importance was {found['note']}"}
    moves = shift(before["shares"], after["shares"])
    return {"shifts": [m.to_dict(who) for m in moves], "largest": moves[0].to_dict(who) if moves else None,
            "rows": after["rows"], "method": after["method"]}  # fmt: skip
