"""What a counterfactual may change: the declared constraints (mloop.yaml, narrowed by a request) resolved
against the model's signature and the row being explained into one :class:`Bound` per actionable feature.

Every contradiction is found here, before any search, and answered with a :class:`ConstraintError` that
names the feature: a constraint on a feature the model does not take, ``min`` above ``max``, a direction
that the range makes impossible from the row's value, a request that tries to free an immutable feature.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mloop.config.explain import FeatureConstraint
from mloop.errors import SchemaError
from mloop.explain.attributions import ExplainError
from mloop.models.signature import ColumnSpec

Kind = Literal["int", "float", "category"]
_INTS = {"int32", "int64"}
_FLOATS = {"float32", "float64"}
_UNBOUNDED_REACH = 10.0  # how far, in scales, the search looks along a feature with no bound that way


class ConstraintError(ExplainError, SchemaError):
    """Counterfactual constraints that contradict each other, the model or the row; ``problems`` has one
    entry per feature (a 422 over HTTP)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = "; ".join(f"{name}: {message}" for name, message in problems)
        super().__init__(f"The counterfactual constraints are invalid ({lines}); fix the named features.")

    def to_dict(self) -> list[dict[str, str]]:
        return [{"field": name, "message": message} for name, message in self.problems]


@dataclass(frozen=True)
class Bound:
    """One feature a counterfactual may change, and how: numbers within ``[low, high]`` (direction folded
    in) in whole ``step``\\ s from ``current``; categories among ``choices``. ``scale`` turns a change into
    the distance it costs (a change of one ``scale`` costs 1, as does any change of category)."""

    name: str
    kind: Kind
    current: Any
    low: float = -math.inf
    high: float = math.inf
    step: float | None = None
    scale: float = 1.0
    choices: tuple[Any, ...] = ()

    @property
    def reach(self) -> float:
        """The farthest, in scales, this feature can move from its current value."""
        if self.kind == "category":
            return 1.0
        up = (self.high - self.current) / self.scale if math.isfinite(self.high) else _UNBOUNDED_REACH
        down = (self.current - self.low) / self.scale if math.isfinite(self.low) else _UNBOUNDED_REACH
        return max(up, down, 0.0)

    def cost(self, value: Any) -> float:
        if self.kind == "category":
            return 0.0 if value == self.current else 1.0
        return abs(float(value) - float(self.current)) / self.scale

    def place(self, value: float) -> Any:
        """``value`` moved onto the feature's grid (whole steps from the current value) inside its range;
        the current value where the range holds no point of the grid."""
        return self.place_many(np.array([value], dtype=float))[0]

    def place_many(self, values: np.ndarray) -> list[Any]:
        """:meth:`place` of each of ``values``, as plain Python ints or floats."""
        current = float(self.current)
        if self.step is None:
            placed = np.clip(values, self.low, self.high)
        else:
            first = (
                math.ceil((self.low - current) / self.step - 1e-9) if math.isfinite(self.low) else -math.inf
            )
            last = (
                math.floor((self.high - current) / self.step + 1e-9) if math.isfinite(self.high) else math.inf
            )
            if first > last:
                return [self.current] * len(values)
            steps = np.clip(np.round((values - current) / self.step), first, last)
            placed = np.round(current + steps * self.step, 9)  # 621.9, not 621.9000000000001
        if self.kind == "int":
            return [int(v) for v in np.round(placed)]
        return [float(v) for v in placed]


def resolve(
    row: Mapping[str, Any],
    features: Mapping[str, FeatureConstraint],
    *,
    specs: Sequence[ColumnSpec] | None = None,
    unlisted: Literal["immutable", "free"] = "immutable",
    request: Mapping[str, FeatureConstraint] | None = None,
) -> list[Bound]:
    """The actionable features of ``row``: ``features`` (declared once per endpoint) narrowed by
    ``request``, checked against the model's inputs (``specs``, else the row's own fields and types).

    A feature not declared is immutable unless ``unlisted="free"``; a feature whose value is missing
    (None, NaN) stays as it is: there is no value to move from. Raises :class:`ConstraintError`."""
    by_name = {s.name: s for s in specs} if specs else {n: None for n in row}
    problems: list[tuple[str, str]] = []
    known = ", ".join(by_name)
    for source, given in (("mloop.yaml", features), ("the request", request or {})):
        for name in given:
            if name not in by_name:
                problems.append((name, f"is not an input of the model (in {source}); its inputs: {known}"))
    bounds = []
    for name, spec in by_name.items():
        declared = features.get(name)
        base = declared or FeatureConstraint(immutable=unlisted == "immutable")
        wanted = _narrow(name, base, (request or {}).get(name), problems)
        if wanted is None or wanted.immutable:
            continue
        current = row.get(name)
        if current is None or (isinstance(current, float) and math.isnan(current)):
            continue
        bound = _bound(name, spec, current, wanted, explicit=declared is not None, problems=problems)
        if bound is not None:
            bounds.append(bound)
    if problems:
        raise ConstraintError(problems)
    return bounds


def _narrow(
    name: str,
    base: FeatureConstraint,
    asked: FeatureConstraint | None,
    problems: list[tuple[str, str]],
) -> FeatureConstraint | None:
    """``base`` as the request narrows it: tighter ranges, a direction, a coarser step, fewer categories,
    or immutable; never wider, never an immutable feature freed."""
    if asked is None:
        return base
    if asked.immutable:
        return asked
    if base.immutable:
        problems.append((name, "is immutable for this endpoint (mloop.yaml explain.counterfactuals); a "
                               "request can only narrow the constraints: drop it from the request"))  # fmt: skip
        return None
    low = max((v for v in (base.min, asked.min) if v is not None), default=None)
    high = min((v for v in (base.max, asked.max) if v is not None), default=None)
    if low is not None and high is not None and low > high:
        problems.append((name, f"the request's range and mloop.yaml's do not overlap ({low:g} > {high:g}): "
                               "ask for a range inside the declared one"))  # fmt: skip
        return None
    direction = base.direction
    if asked.direction != "any":
        if base.direction not in ("any", asked.direction):
            problems.append((name, f"direction {asked.direction} contradicts mloop.yaml's {base.direction}: "
                                   "drop it or ask for the same"))  # fmt: skip
            return None
        direction = asked.direction
    step = base.step
    if asked.step is not None:
        if base.step is not None and not _whole(asked.step / base.step):
            problems.append((name, f"step {asked.step:g} is not a multiple of mloop.yaml's step "
                                   f"{base.step:g}: ask for a multiple of it"))  # fmt: skip
            return None
        step = asked.step
    categories = base.categories
    if asked.categories is not None:
        categories = [c for c in asked.categories if base.categories is None or c in base.categories]
        if not categories:
            problems.append((name, "none of the request's categories is allowed by mloop.yaml: ask for "
                                   f"some of {base.categories}"))  # fmt: skip
            return None
    return FeatureConstraint(min=low, max=high, direction=direction, step=step, categories=categories)


def _bound(
    name: str,
    spec: ColumnSpec | None,
    current: Any,
    c: FeatureConstraint,
    *,
    explicit: bool,
    problems: list[tuple[str, str]],
) -> Bound | None:
    kind = _kind(spec, current)
    if kind is None:  # a tensor, a timestamp, text without categories: nothing to move it along
        if explicit:
            problems.append((name, f"a {spec.dtype if spec else type(current).__name__} feature cannot be "
                                   "changed by a counterfactual: declare it immutable"))  # fmt: skip
        return None
    numeric = {"min": c.min, "max": c.max, "step": c.step}
    if kind == "category":
        given = [k for k, v in numeric.items() if v is not None] + (
            ["direction"] if c.direction != "any" else []
        )
        if given:
            problems.append((name, f"a categorical feature takes no {', '.join(given)}: give categories"))
            return None
        allowed = c.categories or _categories(spec, current)
        if not allowed:
            if explicit:
                problems.append((name, "a text feature needs its categories: give categories: [...]"))
            return None
        known = list(spec.categories or ()) if spec is not None else []
        unknown = [v for v in allowed if known and v not in known]
        if unknown:
            problems.append((name, f"{unknown} are not categories of the model; its categories: {known}"))
            return None
        return Bound(name, kind, current, choices=tuple(v for v in allowed if v != current))
    if c.categories is not None:
        problems.append((name, "a numeric feature takes min, max and step, not categories"))
        return None
    step = c.step
    if kind == "int":
        step = step or 1.0
        if not _whole(step):
            problems.append(
                (name, f"an integer feature moves in whole steps, not {step:g}: give step: 1 or more")
            )
            return None
    low = -math.inf if c.min is None else c.min
    high = math.inf if c.max is None else c.max
    value = float(current)
    if c.direction == "up":
        if high < value:
            problems.append((name, f"direction up, but max ({high:g}) is below the current value ({value:g}): "
                                   "raise max or allow direction down"))  # fmt: skip
            return None
        low = max(low, value)
    elif c.direction == "down":
        if low > value:
            problems.append((name, f"direction down, but min ({low:g}) is above the current value "
                                   f"({value:g}): lower min or allow direction up"))  # fmt: skip
            return None
        high = min(high, value)
    span = high - low
    scale = span if math.isfinite(span) and span > 0 else max(abs(value), 1.0)
    if c.min is not None and c.max is not None and c.max > c.min:
        scale = c.max - c.min  # the declared range, not the part of it left by the direction
    return Bound(name, kind, current, low, high, step, scale)


def _kind(spec: ColumnSpec | None, current: Any) -> Kind | None:
    if spec is not None:
        if spec.shape is not None:
            return None
        if spec.categories is not None or spec.dtype in ("string", "bool"):
            return "category"
        if spec.dtype in _INTS:
            return "int"
        return "float" if spec.dtype in _FLOATS else None
    if isinstance(current, bool | str | np.bool_):
        return "category"
    if isinstance(current, int | np.integer):
        return "int"
    return "float" if isinstance(current, float | np.floating) else None


def _categories(spec: ColumnSpec | None, current: Any) -> list[Any]:
    if spec is not None and spec.categories:
        return list(spec.categories)
    if (spec is not None and spec.dtype == "bool") or isinstance(current, bool | np.bool_):
        return [True, False]
    return []


def _whole(x: float) -> bool:
    return abs(x - round(x)) < 1e-9 and round(x) >= 1
