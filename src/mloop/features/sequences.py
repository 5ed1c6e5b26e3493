"""Sequence training sets: per entity row, the requested features on a regular time grid ending at the
row's time, as tensor columns a sequence model (LSTM, 1-D CNN) trains on.

Row ``i`` with time ``t`` gets ``length`` steps at ``t - (length - 1) * step, ..., t - step, t`` (oldest
first). Each step's value is exactly what a point-in-time lookup at that step's time gives: every (row,
step) pair becomes one row of an expanded entity frame that goes through the offline store's ordinary
point-in-time join in one DuckDB pass, so ttl, ties and aggregation windows mean what they mean
everywhere else, and nothing after a step's time (let alone after ``t``) can enter.

The result is the entity frame with two tensor columns (per-row NumPy arrays, as any tensor column in a
DataFrame): ``sequence`` of shape ``(length, n_features)`` float32 and ``sequence_mask`` of shape
``(length,)`` bool, True where the step has a value for every feature. A missing value (no reading yet,
outside the view's ttl, a null or NaN reading) holds ``pad`` (0.0 by default) and makes its step's mask
False. :func:`sequence_arrays` stacks them into ``(n, length, f)`` and ``(n, length)`` arrays for PyTorch.

>>> spec = SequenceSpec(length=120, step="1d")
>>> train = project.features.historical(labels, ["field_daily:*"], sequence=spec)  # doctest: +SKIP
>>> X, mask = spec.arrays(train)  # float32 (n, 120, f), bool (n, 120)            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from mloop._time import parse_duration
from mloop.data.schema import NUMERIC
from mloop.errors import MloopError, SchemaError
from mloop.features.definitions import FeatureView, OnDemandView
from mloop.features.refs import resolve

MAX_LENGTH = 100_000
# The grid expands each entity row into `length` rows; entity rows go through the point-in-time join in
# blocks of at most this many grid rows, so memory stays bounded whatever the number of rows (10k rows x
# 120 steps is one block).
GRID_ROWS = 4_000_000
_MAX_SPAN = timedelta(days=365 * 1000)
_SUPPORTED = (
    "A sequence holds numbers: plain features of dtype int32, int64, float32, float64 or bool, and "
    "aggregations whose values are numbers (count, distinct_count, and sum, mean, min, max or last of a "
    "numeric column)."
)

Lookup = Callable[..., pd.DataFrame]


@dataclass(frozen=True)
class SequenceSpec:
    """A fixed-length sequence per entity row: ``length`` steps of ``step`` ("1h", "1d", "7d"), the last at
    the row's own time. ``pad`` fills missing values (0.0, so a network never sees NaN; ``float("nan")``
    if you prefer to see the gaps); ``name`` names the output columns (``name`` and ``name_mask``, or
    ``mask`` when given: name them as the model's ``forward`` arguments).

    >>> SequenceSpec(length=120, step="1d").span
    datetime.timedelta(days=119)
    """

    length: int
    step: str | timedelta = "1d"
    pad: float = 0.0
    name: str = "sequence"
    mask: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.length, bool) or not isinstance(self.length, int | np.integer):
            raise SchemaError(
                f"SequenceSpec length must be a whole number of steps, like 120; got {self.length!r}."
            )
        if not 1 <= self.length <= MAX_LENGTH:
            raise SchemaError(
                f"SequenceSpec length must be between 1 and {MAX_LENGTH:,} steps; got {self.length}. "
                "For a longer history use a coarser step (step='7d')."
            )
        object.__setattr__(self, "length", int(self.length))
        try:
            step = parse_duration(self.step, what="SequenceSpec step")
        except MloopError as exc:
            raise SchemaError(str(exc)) from None
        if step is None or step <= timedelta(0):
            raise SchemaError(f"SequenceSpec step must be positive, like '1h' or '1d'; got {self.step!r}.")
        if step < timedelta(microseconds=1) or step % timedelta(microseconds=1):
            raise SchemaError(f"SequenceSpec step {self.step!r} must be a whole number of microseconds.")
        if step * (self.length - 1) > _MAX_SPAN:
            raise SchemaError(
                f"SequenceSpec of {self.length} steps of {self.step!r} spans more than 1000 years; "
                "shorten it."
            )
        object.__setattr__(self, "step", step)
        try:
            object.__setattr__(self, "pad", float(self.pad))
        except (TypeError, ValueError):
            raise SchemaError(
                f"SequenceSpec pad must be a number (0.0 or float('nan')); got {self.pad!r}."
            ) from None
        for what, value in (("name", self.name), ("mask", self.mask_name)):
            if not isinstance(value, str) or not value:
                raise SchemaError(f"SequenceSpec {what} must be a non-empty column name; got {value!r}.")
        if self.name == self.mask_name:
            raise SchemaError(f"SequenceSpec name and mask must differ; both are {self.name!r}.")

    @property
    def span(self) -> timedelta:
        """From the first step to the last: ``(length - 1) * step``."""
        assert isinstance(self.step, timedelta)
        return self.step * (self.length - 1)

    @property
    def mask_name(self) -> str:
        return f"{self.name}_mask" if self.mask is None else self.mask

    def arrays(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """This spec's sequence columns of ``frame`` as ``(X, mask)`` arrays: :func:`sequence_arrays`."""
        return sequence_arrays(frame, self.name, self.mask_name)


def sequence_arrays(
    frame: pd.DataFrame, name: str = "sequence", mask: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The sequence columns of a training set as two arrays: ``X`` float32 ``(n, length, n_features)``
    and ``mask`` bool ``(n, length)``; ``torch.from_numpy`` makes them tensors.

    >>> X, mask = sequence_arrays(train)   # doctest: +SKIP
    >>> X.shape, mask.shape                # doctest: +SKIP
    ((10000, 120, 3), (10000, 120))
    """
    mask = f"{name}_mask" if mask is None else mask
    missing = [c for c in (name, mask) if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"The frame has no column(s) {missing}: pass the result of "
            "features.historical(..., sequence=SequenceSpec(...)), and name=... if the spec renamed them."
        )
    cells, masks = list(frame[name]), list(frame[mask])
    if len(frame) == 0:
        raise SchemaError("The frame has no rows, so there are no sequences to stack.")
    return np.stack(cells).astype(np.float32, copy=False), np.stack(masks).astype(bool, copy=False)


def historical(
    lookup: Lookup,
    entity_df: pd.DataFrame,
    features: Sequence[str],
    spec: SequenceSpec,
    *,
    objects: Mapping[str, FeatureView | OnDemandView],
    timestamp: str,
    full_feature_names: bool = False,
) -> pd.DataFrame:
    """``entity_df`` with ``spec.name`` and ``spec.mask_name`` added; ``lookup`` is the point-in-time
    training-set function (``FeatureService.historical`` without a sequence), called on the grid. The
    feature order of the last axis is in ``frame.attrs["sequence_features"]`` (the request order)."""
    if not isinstance(spec, SequenceSpec):
        raise SchemaError(f"sequence= takes a SequenceSpec(length=..., step=...), not {type(spec).__name__}.")
    outputs, keys = _plan(features, objects, full_feature_names)
    for column in (spec.name, spec.mask_name):
        if column in entity_df.columns:
            raise SchemaError(
                f"entity_df already has a column {column!r}; rename it, or name the sequence otherwise: "
                f"SequenceSpec(..., name='history')."
            )
    missing = [c for c in [timestamp, *keys] if c not in entity_df.columns]
    if missing:
        raise SchemaError(
            f"entity_df has no column(s) {missing} (the time and the join keys of the requested views); "
            f"it has {list(entity_df.columns)}."
        )
    times = _times(entity_df[timestamp], timestamp)
    n, length, width = len(entity_df), spec.length, len(outputs)
    values = np.full((n, length, width), spec.pad, dtype=np.float32)
    present = np.zeros((n, length, width), dtype=bool)
    offsets = _offsets(spec)
    block = max(1, GRID_ROWS // length)
    for start in range(0, n, block):
        stop = min(n, start + block)
        grid: dict[str, Any] = {key: np.repeat(entity_df[key].to_numpy()[start:stop], length) for key in keys}
        stamps = (times[start:stop, None] - offsets[None, :]).reshape(-1)
        grid[timestamp] = pd.DatetimeIndex(stamps).tz_localize("UTC")
        found = lookup(
            pd.DataFrame(grid), features, timestamp=timestamp, full_feature_names=full_feature_names
        )
        got, seen = _matrix(found, outputs)
        values[start:stop] = np.where(seen, got, spec.pad).reshape(stop - start, length, width)
        present[start:stop] = seen.reshape(stop - start, length, width)
    frame = entity_df.copy()
    frame[spec.name] = pd.Series(list(values), index=entity_df.index, dtype=object)
    observed: np.ndarray = np.all(present, axis=2)  # a step is real only if every feature has a value
    frame[spec.mask_name] = pd.Series(list(observed), index=entity_df.index, dtype=object)
    frame.attrs["sequence_features"] = list(outputs)
    return frame


def _plan(
    features: Sequence[str], objects: Mapping[str, FeatureView | OnDemandView], full: bool
) -> tuple[list[str], list[str]]:
    """The output column of each requested feature, in order, and the join keys the grid must carry;
    refuses what a sequence cannot hold."""
    resolved = resolve(features, objects)
    if resolved.on_demand:
        names = ", ".join(odv.name for odv, _ in resolved.on_demand)
        raise SchemaError(
            f"On-demand view(s) {names} cannot be sequenced: their request fields belong to the label row, "
            f"not to each step. Request their input features instead. {_SUPPORTED}"
        )
    outputs: list[str] = []
    keys: list[str] = []
    for view_name, wanted in resolved.views.items():
        view = resolved.objects[view_name]
        assert isinstance(view, FeatureView)
        fields = {f.name: f for f in view.features}
        for feature in wanted:
            field = fields.get(feature)
            if field is not None and (field.shape is not None or field.dtype not in NUMERIC | {"bool"}):
                kind = f"a tensor of shape {list(field.shape)}" if field.shape else field.dtype
                raise SchemaError(
                    f"Feature {view_name}:{feature} is {kind}, which a sequence cannot hold. {_SUPPORTED}"
                )
            outputs.append(f"{view_name}__{feature}" if full else feature)
        keys += [k for k in view.join_keys if k not in keys]
    if len(set(outputs)) < len(outputs):
        raise SchemaError("Two requested features share an output name; pass full_feature_names=True.")
    return outputs, keys


def _times(column: pd.Series, name: str) -> np.ndarray:
    """The rows' times as UTC microseconds (``datetime64[us]``), as the offline store compares them."""
    if not isinstance(column.dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_datetime64_dtype(column.dtype):
            raise SchemaError(
                f"entity_df column {name!r} holds naive timestamps; mloop needs them UTC-aware: "
                f'df[{name!r}] = df[{name!r}].dt.tz_localize("UTC") (if they are in UTC).'
            )
        raise SchemaError(
            f"entity_df column {name!r} must hold UTC timestamps, not {column.dtype}: "
            f"df[{name!r}] = pd.to_datetime(df[{name!r}], utc=True)."
        )
    if column.isna().any():
        raise SchemaError(
            f"entity_df column {name!r} has {int(column.isna().sum())} empty value(s); every row needs a time: "
            f"df = df.dropna(subset=[{name!r}])."
        )
    naive = column.dt.tz_convert("UTC").dt.tz_localize(None)
    # Truncated to microseconds, as the offline store truncates, so step times land where a lookup would.
    return naive.to_numpy().astype("datetime64[us]")


def _offsets(spec: SequenceSpec) -> np.ndarray:
    assert isinstance(spec.step, timedelta)
    step = spec.step // timedelta(microseconds=1)
    return (np.arange(spec.length - 1, -1, -1, dtype=np.int64) * step).astype("timedelta64[us]")


def _matrix(found: pd.DataFrame, outputs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, features)`` values as float64 and whether each is present (not null, not NaN)."""
    columns = []
    for name in outputs:
        column = found[name]
        try:
            columns.append(column.to_numpy(dtype=np.float64, na_value=np.nan))
        except (TypeError, ValueError):
            example = column.dropna().iloc[0] if column.notna().any() else None
            raise SchemaError(
                f"Feature {name!r} gives values like {example!r} ({type(example).__name__}), which a sequence "
                f"cannot hold. {_SUPPORTED}"
            ) from None
    matrix = np.column_stack(columns) if columns else np.empty((len(found), 0))
    return matrix, ~np.isnan(matrix)


def grid_times(time: Any, spec: SequenceSpec) -> list[pd.Timestamp]:
    """The step times of one row at ``time``, oldest first (what the sequence's steps are "as of").

    >>> grid_times(pd.Timestamp("2026-06-30", tz="UTC"), SequenceSpec(3, "1d"))[0]
    Timestamp('2026-06-28 00:00:00+0000', tz='UTC')
    """
    at, step = pd.Timestamp(time), pd.Timedelta(spec.step)
    return [at - k * step for k in range(spec.length - 1, -1, -1)]
