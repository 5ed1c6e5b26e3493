"""Reference profiles: what the training data and its predictions looked like, for drift monitoring.

A profile is plain JSON (strict: no NaN, no infinities) so it can be stored as an artifact, in a JSON
column or sent by the HTTP API as it is. Monitoring compares current data against it with
:func:`bin_frequencies` and :func:`category_frequencies`, which bin exactly as the profile did.

>>> frame = pd.DataFrame({"amount": [1.0, 2.0, 3.0, None], "country": ["fr", "fr", "de", None]})
>>> p = build_profile(frame, bins=2)
>>> p["columns"]["amount"]["edges"], p["columns"]["amount"]["frequencies"]
([None, 2.0, None], [0.6666666666666666, 0.3333333333333333])
>>> p["columns"]["country"]["shares"]
{'fr': 0.6666666666666666, 'de': 0.3333333333333333, '__other__': 0.0}
>>> bin_frequencies([0.5, 10.0], p["columns"]["amount"]["edges"])
[0.5, 0.5]

Layout (``format`` 1)::

    {"format": 1, "rows": n, "settings": {"bins", "top_k", "sample", "seed"},
     "columns": {name: column profile}, "prediction": column profile or None}

Every column profile has ``kind``, ``dtype``, ``rows``, ``nulls``, ``null_share``; then by kind:

- ``"numeric"`` (numbers, not bool): ``count`` (non-null), ``min``, ``max``, ``mean``, ``std``
  (population, ddof=0), ``quantiles`` (``{"0.01": v, ...}`` at ``QUANTILES``, linear interpolation),
  ``edges``, ``frequencies`` and ``sample``. Bin ``i`` holds the values ``v`` with
  ``edges[i] < v <= edges[i + 1]``; ``edges[0]`` and ``edges[-1]`` are ``None`` and mean unbounded, so
  every future value falls in a bin. The inner edges are the distinct reference quantiles at ``1/bins,
  ..., (bins-1)/bins`` (the smallest data value at or above each, ``inverted_cdf``), less any equal to
  the maximum: there are at most ``bins`` bins and each holds at least one reference value (a 0/1
  column gets exactly the bins {0} and {1}). ``frequencies`` are the shares of the non-null values per
  bin, summing to 1 (all 0.0 when the column has no value).
- ``"categorical"`` (strings, bools, objects, categories; values compared by ``str(value)``):
  ``count``, ``distinct``, ``shares``: the ``top_k`` most frequent categories (ties by name) and
  ``"__other__"`` (always present, possibly 0.0) as shares of the non-null values, and ``sample``.
  A value that is literally ``"__other__"`` counts in the other bucket.
- ``"timestamp"``: ``min`` and ``max`` as ISO 8601 strings (``None`` when all null).
- ``"tensor"`` (an object column of arrays or nested lists of numbers: images, embeddings): ``count``,
  ``shape`` (the first value's) and ``components`` (its size). The values themselves are too big for
  JSON: drift compares them with a reference sample stored beside the profile
  (:mod:`mloop.metrics.reference`).

A class-probability matrix as ``prediction`` (``(rows, classes)``, a multiclass model) is profiled as
the categorical column of the predicted classes (the highest probability, named by ``classes`` or by
index) with two more keys: ``classes`` (the names, in column order) and ``probabilities`` (a numeric
profile of each class's probability, by name, with a sample of at most 1,000 values).

Nulls are None, NaN, NaT and, for numbers, infinities; they are counted in ``nulls`` and left out of
everything else. ``sample`` is at most ``settings.sample`` non-null values drawn without replacement
with ``numpy.random.default_rng(seed)``; numeric samples are drawn from the sorted values, so they do
not depend on the row order.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import MalformedInput, SchemaError

FORMAT = 1
OTHER = "__other__"
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)

_FEW_EDGES = 32  # up to this many inner edges, bins are counted by comparisons instead of searchsorted
_CHUNK = 1 << 20  # rows per step of the work that would otherwise need a temporary the size of the column


def build_profile(
    frame: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    prediction: np.ndarray | pd.Series | None = None,
    classes: list[Any] | None = None,
    bins: int = 10,
    top_k: int = 50,
    sample: int = 5_000,
    seed: int = 0,
) -> dict[str, Any]:
    """The reference profile of ``columns`` of ``frame`` (all by default) and of ``prediction``.

    ``prediction`` is one value per row (the score, probability of the positive class or predicted
    label), or a multiclass model's ``(rows, classes)`` probabilities, whose columns ``classes`` names
    (default: "0", "1", ...). Deterministic for a given input and ``seed``.
    """
    for name, value, least in (
        ("bins", bins, 1),
        ("top_k", top_k, 0),
        ("sample", sample, 0),
        ("seed", seed, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"build_profile's {name} must be an integer >= {least}; got {value!r}.")
    if columns is None:
        columns = list(frame.columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"Cannot profile column(s) {missing}: the data has {list(frame.columns)}. Fix the names."
        )
    settings = {"bins": bins, "top_k": top_k, "sample": sample, "seed": seed}
    profile: dict[str, Any] = {
        "format": FORMAT,
        "rows": len(frame),
        "settings": settings,
        "columns": {str(c): _column(frame[c], settings) for c in columns},
        "prediction": None,
    }
    if prediction is not None:
        if not isinstance(prediction, pd.Series):
            prediction = np.asarray(prediction)
            if prediction.ndim == 2 and prediction.shape[1] > 1 and prediction.dtype != object:
                profile["prediction"] = _classes(prediction, classes, settings)
                return profile
            if prediction.ndim != 1:
                raise ValueError(
                    f"prediction must hold one value per row, or a (rows, classes) matrix of class "
                    f"probabilities; got shape {prediction.shape}. For a binary model pass the positive "
                    "class's column, proba[:, 1]."
                )
            prediction = pd.Series(prediction)
        profile["prediction"] = _column(prediction, settings)
    return profile


def profile_to_json(profile: dict[str, Any]) -> str:
    """The profile as strict JSON text (``profile_from_json`` reads it back equal)."""
    return json.dumps(profile, allow_nan=False, separators=(",", ":"))


def profile_from_json(text: str | bytes) -> dict[str, Any]:
    """A profile from the text :func:`profile_to_json` wrote."""
    try:
        profile = json.loads(text)
    except ValueError as exc:
        raise MalformedInput(f"A reference profile must be JSON; this is not ({exc}).") from None
    if not isinstance(profile, dict) or profile.get("format") != FORMAT or "columns" not in profile:
        found = profile.get("format") if isinstance(profile, dict) else type(profile).__name__
        raise MalformedInput(
            f"This is not a format-{FORMAT} reference profile (format: {found!r}). Rebuild it with "
            "build_profile from the reference data."
        )
    return profile


def bin_frequencies(values: Any, edges: list[float | None]) -> list[float]:
    """Shares of the non-null ``values`` in the bins ``edges`` describe (see the module docstring).

    Returns one share per bin, ``len(edges) - 1`` of them, zeros included; all 0.0 when ``values`` has
    no non-null value. The end edges are ignored: the first and last bins are unbounded.
    """
    if len(edges) < 2:
        raise ValueError(f"edges must hold at least two entries (one bin); got {edges!r}.")
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    array = _floats(values)
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    for start in range(0, len(array), _CHUNK):
        chunk = array[start : start + _CHUNK]
        chunk = chunk[np.isfinite(chunk)]
        if len(inner) <= _FEW_EDGES:
            # One vectorised comparison per edge beats a binary search per value (by ~5x for deciles):
            # the values at or below edge j are those in bins 0..j.
            at_most = np.array([np.count_nonzero(chunk <= edge) for edge in inner], dtype=np.int64)
            counts += np.diff(np.concatenate(([0], at_most, [len(chunk)])))
        else:
            counts += np.bincount(np.searchsorted(inner, chunk, side="left"), minlength=len(counts))
    return _shares(counts, int(counts.sum()))


def category_frequencies(values: Any, categories: list[str] | dict[str, Any]) -> dict[str, float]:
    """Shares of the non-null ``values`` per category of the profile, plus ``"__other__"``.

    ``categories`` is a profile's ``shares`` (or its keys); values are compared by ``str(value)``. Every
    category is in the result, zeros included; all 0.0 when ``values`` has no non-null value.
    """
    keys = [c for c in categories if c != OTHER]
    counts = _category_counts(pd.Series(values) if not isinstance(values, pd.Series) else values)
    total = int(sum(counts.values()))
    known = [counts.get(k, 0) for k in keys]
    shares = _shares(np.asarray([*known, total - sum(known)], dtype=np.int64), total)
    return dict(zip([*keys, OTHER], shares, strict=True))


# -- one column ---------------------------------------------------------------------------------------


def _column(column: pd.Series, settings: dict[str, Any]) -> dict[str, Any]:
    dtype = column.dtype
    if is_tensor(column):
        return _tensor(column)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return _timestamp(column)
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return _numeric(column, settings)
    return _categorical(column, settings)


def _base(kind: str, column: pd.Series, nulls: int) -> dict[str, Any]:
    rows = len(column)
    return {
        "kind": kind,
        "dtype": str(column.dtype),
        "rows": rows,
        "nulls": nulls,
        "null_share": nulls / rows if rows else 0.0,
    }


def _numeric(column: pd.Series, settings: dict[str, Any]) -> dict[str, Any]:
    values = _finite_sorted(column)
    n = len(values)
    out = _base("numeric", column, len(column) - n)
    out["count"] = n
    if n == 0:
        out.update(min=None, max=None, mean=None, std=None, quantiles={str(q): None for q in QUANTILES})
        out.update(edges=[None, None], frequencies=[0.0], sample=[])
        return out
    mean = float(np.mean(values))
    squares = sum(float(np.sum((values[i : i + _CHUNK] - mean) ** 2)) for i in range(0, n, _CHUNK))
    cuts = np.unique(_cut_points(values, settings["bins"]))
    cuts = cuts[cuts < values[-1]]
    # values <= cut[i] and above the previous cut are in bin i; searchsorted on sorted data counts them
    ends = np.searchsorted(values, cuts, side="right")
    counts = np.diff(np.concatenate(([0], ends, [n])))
    out.update(
        min=float(values[0]),
        max=float(values[-1]),
        mean=_finite(mean),
        std=_finite(math.sqrt(squares / n)),
        quantiles={str(q): _finite(v) for q, v in zip(QUANTILES, _linear(values, QUANTILES), strict=True)},
        edges=[None, *(float(c) for c in cuts), None],
        frequencies=_shares(counts, n),
        sample=[float(v) for v in values[_sample_positions(n, settings)]],
    )
    return out


def _categorical(column: pd.Series, settings: dict[str, Any]) -> dict[str, Any]:
    counts = _category_counts(column)
    count = int(sum(counts.values()))
    out = _base("categorical", column, len(column) - count)
    ranked = sorted(((-c, k) for k, c in counts.items() if k != OTHER))
    top = [(k, -c) for c, k in ranked[: settings["top_k"]]]
    other = count - sum(c for _, c in top)
    shares = _shares(np.asarray([*(c for _, c in top), other], dtype=np.int64), count)
    notnull = column[column.notna().to_numpy()]
    out.update(
        count=count,
        distinct=len(counts),
        shares=dict(zip([*(k for k, _ in top), OTHER], shares, strict=True)),
        sample=[str(v) for v in notnull.iloc[_sample_positions(len(notnull), settings)]],
    )
    return out


def _timestamp(column: pd.Series) -> dict[str, Any]:
    nulls = int(column.isna().sum())
    out = _base("timestamp", column, nulls)
    low, high = column.min(), column.max()
    out["min"] = None if pd.isna(low) else pd.Timestamp(low).isoformat()
    out["max"] = None if pd.isna(high) else pd.Timestamp(high).isoformat()
    return out


def is_tensor(column: pd.Series) -> bool:
    """Whether ``column`` is profiled as a tensor: an object column whose first non-null value is an
    array or a (rectangular) list of numbers."""
    if column.dtype != object:
        return False
    index = column.first_valid_index()
    if index is None:
        return False
    first = column.loc[index]
    if isinstance(first, np.ndarray):
        return first.dtype.kind in "biuf"
    if isinstance(first, list) and first:
        try:
            return np.asarray(first).dtype.kind in "biuf"
        except ValueError:  # ragged
            return False
    return False


def _tensor(column: pd.Series) -> dict[str, Any]:
    present = column.notna().to_numpy()
    out = _base("tensor", column, int((~present).sum()))
    first = np.asarray(column.loc[column.first_valid_index()])
    out.update(count=int(present.sum()), shape=list(first.shape), components=int(first.size))
    return out


def _classes(matrix: np.ndarray, classes: list[Any] | None, settings: dict[str, Any]) -> dict[str, Any]:
    width = matrix.shape[1]
    names = [str(c) for c in classes] if classes is not None else [str(i) for i in range(width)]
    if len(names) != width:
        raise ValueError(f"classes names {len(names)} classes; the prediction has {width} columns.")
    finite = np.isfinite(matrix).all(axis=1)
    predicted = pd.Series(np.where(finite, np.asarray(names, dtype=object)[np.argmax(np.nan_to_num(matrix), axis=1)],
                                   None), dtype=object)  # fmt: skip
    # every class is a category of its own, even past top_k: a class matrix is never that wide
    out = _categorical(predicted, {**settings, "top_k": max(settings["top_k"], width)})
    out["shares"] = {**{n: out["shares"].get(n, 0.0) for n in names}, OTHER: out["shares"][OTHER]}
    small = {**settings, "sample": min(settings["sample"], 1_000)}
    out["classes"] = names
    out["probabilities"] = {n: _numeric(pd.Series(matrix[:, i]), small) for i, n in enumerate(names)}
    return out


# -- helpers ------------------------------------------------------------------------------------------


def _finite_sorted(column: pd.Series) -> np.ndarray:
    """The finite values of ``column`` as sorted float64: the one copy of the column a profile makes.

    Converted chunk by chunk into one array, so a nullable or narrow dtype costs no second copy.
    """
    values = np.empty(len(column), dtype=np.float64)
    for start in range(0, len(column), _CHUNK):
        chunk = column.iloc[start : start + _CHUNK]
        values[start : start + len(chunk)] = chunk.to_numpy(dtype=np.float64, na_value=np.nan)
    values.sort()  # -inf first, then the finite values, +inf, and NaN last
    low = np.searchsorted(values, -np.inf, side="right")
    high = np.searchsorted(values, np.inf, side="left")
    return values[low:high]


def _category_counts(column: pd.Series) -> dict[str, int]:
    """Non-null counts by ``str(value)``, merging values that print the same (1 and "1")."""
    counts: dict[str, int] = {}
    for value, count in column.value_counts(dropna=True, sort=False).items():
        if count:  # a category dtype lists its unused categories with count 0
            key = str(value)
            counts[key] = counts.get(key, 0) + int(count)
    return counts


def _sample_positions(n: int, settings: dict[str, Any]) -> np.ndarray:
    size = settings["sample"]
    if n <= size:
        return np.arange(n)
    rng = np.random.default_rng(settings["seed"])
    return np.sort(rng.choice(n, size=size, replace=False))


def _cut_points(ordered: np.ndarray, bins: int) -> np.ndarray:
    """numpy's ``inverted_cdf`` quantiles of sorted data at 1/bins, ..., (bins-1)/bins.

    The smallest value whose empirical CDF reaches k/bins: position ceil(n*k/bins) - 1, computed in
    integers so that no rounding moves a cut to the next value.
    """
    n = len(ordered)
    k = np.arange(1, bins, dtype=np.int64)
    return ordered[(n * k + bins - 1) // bins - 1]


def _linear(ordered: np.ndarray, probabilities: tuple[float, ...]) -> list[float]:
    """numpy's default (``linear``) quantiles of sorted data, without the copy ``np.quantile`` makes."""
    n = len(ordered)
    out = []
    for p in probabilities:
        h = p * (n - 1)
        low = math.floor(h)
        high = min(low + 1, n - 1)
        out.append(float(ordered[low] + (h - low) * (ordered[high] - ordered[low])))
    return out


def _floats(values: Any) -> np.ndarray:
    if not isinstance(values, pd.Series):
        array = np.asarray(values)
        if array.dtype != object:
            return array.astype(np.float64, copy=False)
        values = pd.Series(array)  # None among numbers
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _shares(counts: np.ndarray, total: int) -> list[float]:
    if total == 0:
        return [0.0] * len(counts)
    return [int(c) / total for c in counts]


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
