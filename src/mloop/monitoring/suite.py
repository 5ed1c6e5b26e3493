"""The drift suite: every column of a window against a model version's reference profile.

:func:`compare` picks a method per column (or takes the one you name), computes it with
:mod:`mloop.monitoring.drift` and decides against a fixed threshold. The reference is only the profile
(bin edges and frequencies, category shares, a bounded sample), so the cost does not depend on how big
the training set was, and the current window is counted chunk by chunk, never copied whole.

Default methods (:func:`default_method`), by column kind and the number of non-null current values n:

======================  =================  ====================================================
kind                    n <= 1,000         n > 1,000
======================  =================  ====================================================
numeric (and scores)    ``ks``: p < 0.05   ``psi`` on the reference's decile bins: >= 0.1
categorical             ``chi2``: p < 0.05 ``jensen_shannon`` on the top categories: >= 0.1
======================  =================  ====================================================

Small windows get a test, because an effect size from a few hundred values is mostly noise; large
windows get an effect size with a fixed threshold, because a p-value at a million rows flags shifts too
small to matter (a KS test at n = 1M calls a 0.5% shift of the mean significant). Every method is
available for every kind where it makes sense: ``psi``, ``jensen_shannon``, ``hellinger`` and ``chi2``
on the profile's bins or categories; ``ks`` and ``wasserstein`` (normalised by the reference's standard
deviation) on the reference sample, numeric columns only. Thresholds (:data:`THRESHOLDS`) can be
overridden per method or per column.

Many columns tested at p < 0.05 in one window raise a false alarm often (12 unshifted columns: 46% of
windows); ``correction="bonferroni"`` (what the monitoring service uses, ``drift.correction`` in
mloop.yaml, as alibi-detect does) divides the tests' threshold by how many columns were tested, and the
reported threshold is the corrected one. Effect-size methods are not corrected: their thresholds do not
depend on how many columns are looked at.

A column with no value in the window is reported as ``drifted=None`` with the reason, never as "no
drift"; so is a column the profile does not hold.

A tensor column (images, embeddings: the profile's kind ``tensor``) is compared with the version's
reference sample (``samples``) by :mod:`mloop.monitoring.embeddings`: ``domain_classifier`` (ROC AUC >
0.55) by default, ``mmd`` (permutation p < 0.01) or ``component_share`` (> 0.2) when named. A multiclass
model's prediction (a ``(rows, classes)`` probability matrix, against a profile whose prediction has
``classes``) is reported as the predicted class (``__prediction__``, categorical: chi2 or
Jensen-Shannon on the class shares) and each class's probability (``__prediction__.<class>``, numeric).

>>> report = compare(profile, window, methods={"amount": "wasserstein"})     # doctest: +SKIP
>>> [c.column for c in report.drifted]                                       # doctest: +SKIP
['amount']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from mloop.errors import MalformedInput
from mloop.metrics.profile import OTHER, bin_frequencies, category_frequencies
from mloop.monitoring import drift, embeddings

PREDICTION = "__prediction__"  # the name the model's output goes by in a report
SMALL = 1_000  # at most this many current values: a test; more: an effect size
THRESHOLDS: dict[str, float] = {"psi": 0.1, "jensen_shannon": 0.1, "hellinger": 0.1, "wasserstein": 0.1,
                                "ks": 0.05, "chi2": 0.05, **embeddings.THRESHOLDS}  # fmt: skip
# p-value methods: drift when p < threshold, corrected for the number of columns. Not mmd: a permutation
# p-value is at least 1 / (permutations + 1), which a corrected threshold would put out of reach; its
# own alpha (0.01) is already five times stricter than the tests'.
TESTS = {"ks", "chi2"}
_NUMERIC_ONLY = {"ks", "wasserstein"}
_TENSOR_ONLY = set(embeddings.THRESHOLDS)
_KINDS = ("psi", "jensen_shannon", "hellinger", "chi2", "ks", "wasserstein")


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str | None  # numeric, categorical, tensor; None when the profile does not hold the column
    method: str | None
    statistic: float | None  # the distance, or the test's statistic
    p_value: float | None  # tests only
    threshold: float | None
    drifted: bool | None  # None: could not be decided (see ``note``)
    rows: int  # non-null values in the window
    note: str = ""


@dataclass(frozen=True)
class DriftReport:
    columns: list[ColumnDrift]
    rows: int  # rows in the window
    methods: dict[str, str] = field(default_factory=dict)

    @property
    def drifted(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.drifted]

    @property
    def undecided(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.drifted is None]

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "columns": [asdict(c) for c in self.columns],
                "drifted": [c.column for c in self.drifted]}  # fmt: skip


def default_method(kind: str, rows: int) -> str:
    """The method used for a column of ``kind`` with ``rows`` non-null current values (module table)."""
    if kind == "numeric":
        return "ks" if rows <= SMALL else "psi"
    return "chi2" if rows <= SMALL else "jensen_shannon"


def compare(
    profile: Mapping[str, Any],
    current: pd.DataFrame,
    *,
    prediction: Any = None,
    columns: Sequence[str] | None = None,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    correction: Literal["none", "bonferroni"] = "none",
    samples: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
) -> DriftReport:
    """Drift of ``columns`` of ``current`` (default: every profiled column it holds; a named column it
    lacks is an error) and of ``prediction`` (the model's outputs for the window) against ``profile``.

    ``methods`` maps a column (or ``"__prediction__"``) to a method; ``thresholds`` maps a method or a
    column to its threshold, the column winning. ``correction="bonferroni"`` divides the p-value
    threshold of the tested columns by their number. ``samples`` holds the reference rows of the tensor
    columns (:func:`mloop.metrics.reference.reference_sample`); ``seed`` their subsampling's."""
    if correction not in ("none", "bonferroni"):
        raise MalformedInput(f"Unknown correction {correction!r}; use 'none' or 'bonferroni'.")
    methods, thresholds = dict(methods or {}), dict(thresholds or {})
    for name, method in methods.items():
        if method not in THRESHOLDS:
            raise MalformedInput(
                f"Unknown drift method {method!r} for {name!r}; methods: {', '.join(THRESHOLDS)}."
            )
    profiled: Mapping[str, Any] = profile.get("columns", {})
    if columns is None:
        names = [c for c in profiled if c in current.columns and profiled[c].get("kind") != "timestamp"]
        names += [str(c) for c in current.columns if c not in profiled]  # reported as not profiled
    else:
        missing = [c for c in columns if c not in current.columns]
        if missing:
            raise MalformedInput(
                f"The window has no column {', '.join(map(repr, missing))}; its columns: "
                f"{', '.join(map(str, current.columns))}."
            )
        names = list(columns)
    results = [
        _tensor(name, (samples or {}).get(name), current[name], methods.get(name), thresholds, seed)
        if (profiled.get(name) or {}).get("kind") == "tensor"
        else _one(name, profiled.get(name), current[name], methods.get(name), thresholds)
        for name in names
    ]
    reference = profile.get("prediction")
    if prediction is not None and np.ndim(prediction) == 2 and reference and "classes" in reference:
        results += _classes(reference, np.asarray(prediction, dtype=np.float64), methods, thresholds)
    elif prediction is not None:
        results.append(_one(PREDICTION, reference, pd.Series(np.asarray(prediction).ravel()),
                            methods.get(PREDICTION), thresholds))  # fmt: skip
    if correction == "bonferroni":
        results = _bonferroni(results)
    chosen = {r.column: r.method for r in results if r.method is not None}
    return DriftReport(results, len(current), chosen)


def _bonferroni(results: list[ColumnDrift]) -> list[ColumnDrift]:
    tested = sum(r.method in TESTS and r.p_value is not None for r in results)
    if tested <= 1:
        return results
    out = []
    for r in results:
        if r.method in TESTS and r.p_value is not None and r.threshold is not None:
            threshold = r.threshold / tested
            r = replace(
                r, threshold=threshold, drifted=bool(not math.isnan(r.p_value) and r.p_value < threshold)
            )
        out.append(r)
    return out


def _tensor(name: str, sample: np.ndarray | None, values: pd.Series, method: str | None,
            thresholds: Mapping[str, float], seed: int) -> ColumnDrift:  # fmt: skip
    if method is not None and method not in _TENSOR_ONLY:
        raise MalformedInput(
            f"{method} compares scalars; {name!r} is a tensor: use {', '.join(sorted(_TENSOR_ONLY))}."
        )
    method = method or embeddings.DEFAULT
    threshold = thresholds.get(name, thresholds.get(method))
    found = embeddings.tensor_drift(sample, values, method, threshold, seed)
    return ColumnDrift(name, "tensor", found.method, _plain(found.statistic), _plain(found.p_value),
                       found.threshold, found.drifted, found.rows, found.note)  # fmt: skip


def _classes(reference: Mapping[str, Any], matrix: np.ndarray, methods: Mapping[str, str],
             thresholds: Mapping[str, float]) -> list[ColumnDrift]:  # fmt: skip
    names: list[str] = list(reference["classes"])
    if matrix.shape[1] != len(names):
        return [ColumnDrift(PREDICTION, "categorical", None, None, None, None, None, len(matrix),
                            f"the model answered {matrix.shape[1]} class probabilities, the reference "
                            f"{len(names)}: the classes changed")]  # fmt: skip
    finite = np.isfinite(matrix).all(axis=1)
    labels = np.asarray(names, dtype=object)[np.argmax(np.nan_to_num(matrix), axis=1)]
    predicted = pd.Series(np.where(finite, labels, None), dtype=object)
    out = [_one(PREDICTION, reference, predicted, methods.get(PREDICTION), thresholds)]
    for i, name in enumerate(names):
        column = f"{PREDICTION}.{name}"
        out.append(_one(column, reference["probabilities"].get(name), pd.Series(matrix[:, i]),
                        methods.get(column), thresholds))  # fmt: skip
    return out


def _one(
    name: str, reference: Mapping[str, Any] | None, values: pd.Series, method: str | None,
    thresholds: Mapping[str, float],
) -> ColumnDrift:  # fmt: skip
    if reference is None:
        return ColumnDrift(name, None, method, None, None, None, None, int(values.notna().sum()),
                           "not in the reference profile: register a version trained with it, or leave it out")  # fmt: skip
    kind = reference["kind"]
    if method in _TENSOR_ONLY:
        raise MalformedInput(
            f"{method} compares tensors; {name!r} is {kind}: use one of {', '.join(_KINDS)}."
        )
    if kind not in ("numeric", "categorical"):
        return ColumnDrift(name, kind, method, None, None, None, None, int(values.notna().sum()),
                           f"{kind} columns are not compared for drift")  # fmt: skip
    if kind == "numeric":
        if not (pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)):
            try:
                values = pd.to_numeric(values, errors="raise")
            except (ValueError, TypeError):
                return ColumnDrift(name, kind, method, None, None, None, None, int(values.notna().sum()),
                                   f"numeric in the reference, {values.dtype} in the window: fix the data")  # fmt: skip
        array = values.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(array)
        rows = int(finite.sum())
    else:
        array = None
        rows = int(values.notna().sum())
    method = method or default_method(kind, rows)
    if kind == "categorical" and method in _NUMERIC_ONLY:
        raise MalformedInput(
            f"{method} compares numbers; {name!r} is categorical: use chi2 or jensen_shannon."
        )
    threshold = float(thresholds.get(name, thresholds.get(method, THRESHOLDS[method])))
    if rows == 0:
        return ColumnDrift(name, kind, method, None, None, threshold, None, 0, "no value in the window")
    p_value: float | None = None
    if method in _NUMERIC_ONLY:
        sample = np.asarray(reference.get("sample") or [], dtype=np.float64)
        if not len(sample):
            return ColumnDrift(name, kind, method, None, None, threshold, None, rows,
                               "the reference profile has no sample of this column")  # fmt: skip
        current_values = array[finite]  # type: ignore[index]
        if method == "ks":
            statistic, p_value = drift.ks(sample, current_values)
        else:
            statistic = drift.normed_wasserstein(sample, current_values)
    else:
        expected, actual = _frequencies(kind, reference, values, array)
        if method == "chi2":
            statistic, p_value = drift.chi_square(expected, np.asarray(actual) * rows)
        else:
            statistic = float(getattr(drift, method)(expected, actual))
    if method in TESTS:
        decided = p_value is not None and not math.isnan(p_value) and p_value < threshold
    else:
        decided = statistic >= threshold
    return ColumnDrift(name, kind, method, _plain(statistic), _plain(p_value), threshold, bool(decided), rows)


def _frequencies(
    kind: str, reference: Mapping[str, Any], values: pd.Series, array: np.ndarray | None
) -> tuple[list[float], list[float]]:
    if kind == "numeric":
        return list(reference["frequencies"]), bin_frequencies(array, reference["edges"])
    shares: dict[str, float] = reference["shares"]
    current = category_frequencies(values, shares)
    keys = [k for k in shares if k != OTHER] + [OTHER]
    return [shares.get(k, 0.0) for k in keys], [current[k] for k in keys]


def _plain(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


__all__ = ["THRESHOLDS", "ColumnDrift", "DriftReport", "compare", "default_method"]
