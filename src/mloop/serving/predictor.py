"""One model version ready to answer requests: its model, the features it reads from the online store,
and its signature.

A request row holds the entity's join keys (``customer_id``) and request-time features (``amount``). The
features the model was trained on (``lineage.features``, e.g. ``customer_stats:*``) are looked up for all
rows in one round trip to the online store; a value the request gives itself takes precedence over the
looked-up one (so a caller can send a feature the store does not hold yet). The merged rows are checked
against the signature, which answers a mismatch with one line per field.

>>> predictor = Predictor.load(project, "fraud", 3)                                  # doctest: +SKIP
>>> predictor.predict(project, [{"customer_id": 42, "amount": 12.5}]).predictions    # doctest: +SKIP
[0.013]
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import MalformedInput
from mloop.models.row_check import conforms
from mloop.models.signature import ColumnSpec, Signature, SignatureError
from mloop.project import Project
from mloop.registry.versions import LoadedModel

MAX_ROWS = 10_000  # per request; larger batches belong to `mloop score`
NATIVE = "native"  # a deployment's default runtime: each version's own flavour


@dataclass(frozen=True)
class Prediction:
    predictions: list[Any]
    inputs: dict[str, list[Any]]  # the model's inputs after the feature lookup, as columns
    lookup_seconds: float
    keys: dict[str, list[Any]] = field(
        default_factory=dict
    )  # the rows' other fields: join keys, request data
    # inputs answered with their feature view's defaults (the online store was unreachable): input -> why
    defaulted: dict[str, str] = field(default_factory=dict)


class Predictor:
    """A loaded model version with its feature plan; thread-safe (it holds no per-request state)."""

    def __init__(self, model: LoadedModel, runtime: str = NATIVE) -> None:
        self.model = model
        self.runtime = runtime  # what serves it: its own flavour, or an export ("onnx")
        self.name = model.name
        self.version = model.version
        self.features: list[str] = [str(f) for f in model.info.lineage.get("features", [])]
        signature = model.signature
        self.specs: list[ColumnSpec] = list(signature.inputs) if signature is not None else []
        self.inputs: list[str] = [c.name for c in self.specs]
        self.tensors = frozenset(c.name for c in self.specs if c.shape is not None)
        self.outputs: list[str] = (
            [c.name for c in signature.outputs]
            if signature is not None and signature.outputs
            else ["prediction"]
        )

    @classmethod
    def load(cls, project: Project, name: str, version: int, runtime: str = NATIVE) -> Predictor:
        """Version ``version`` of model ``name``, served by ``runtime`` (a deployment's ``runtime``:
        ``"native"``, or ``"onnx"`` for the version's ONNX export)."""
        return cls(project.models.load(name, version=version, runtime=runtime), runtime)

    def predict(
        self,
        project: Project,
        rows: Sequence[Mapping[str, Any]],
        *,
        checked: bool = False,
        at: datetime | None = None,
    ) -> Prediction:
        """Look up the model's online features for ``rows`` (as of ``at``, default now), merge what the
        rows give, validate, predict. ``checked``: the caller has already run :func:`check_rows` on them."""
        if not checked:
            check_rows(rows, self.tensors)
        given = {name for row in rows for name in row}
        wanted = self.inputs or sorted(given)
        started = time.perf_counter()
        defaulted: dict[str, str] = {}
        merged = self.model_inputs(project, rows, at=at, given=given, defaulted=defaulted)
        lookup_seconds = time.perf_counter() - started
        scores = self.model.predict_columns(merged)
        keys = {k: [row.get(k) for row in rows] for k in given.difference(wanted)} if given else {}
        if defaulted:  # only the model's inputs, and not those every row gave itself
            defaulted = {
                k: why for k, why in defaulted.items() if k in merged and any(k not in r for r in rows)
            }
        return Prediction(
            _plain(scores), {k: list(v) for k, v in merged.items()}, lookup_seconds, keys, defaulted
        )

    def model_inputs(
        self,
        project: Project,
        rows: Sequence[Mapping[str, Any]],
        *,
        at: datetime | None = None,
        given: set[str] | None = None,
        defaulted: dict[str, str] | None = None,
    ) -> dict[str, list[Any]]:
        """The model's inputs for ``rows`` as columns, exactly as :meth:`predict` feeds them to the model:
        the online features looked up (as of ``at``), the rows' own values winning. Explanations and
        counterfactuals start from these, so they explain the prediction the endpoint gives. Features
        answered with their view's defaults (the store unreachable) are added to ``defaulted``."""
        if given is None:
            given = {name for row in rows for name in row}
        wanted = self.inputs or sorted(given)
        self._check_given(rows, given)
        # Rows that carry every input themselves (an OIP tensor of all columns) need no lookup.
        every = set(wanted)
        needed = bool(self.features) and not all(row.keys() >= every for row in rows)
        columns = self._lookup(project, rows, at, defaulted) if needed else {}
        merged: dict[str, list[Any]] = {}
        for name in wanted:
            looked = columns.get(name)
            if name not in given:
                if looked is not None:
                    merged[name] = looked
            elif looked is None:
                merged[name] = [row.get(name) for row in rows]
            else:  # a row's own value wins; rows without one get the looked-up value
                merged[name] = [row[name] if name in row else looked[i] for i, row in enumerate(rows)]
        return merged

    def _check_given(self, rows: Sequence[Mapping[str, Any]], given: set[str]) -> None:
        """The request's own values of model inputs have the signature's types, before any on-demand view
        computes with them: a wrong type is a per-field 422, not a failed transformation."""
        signature = self.model.signature
        if signature is None or not self.features:
            return
        problems = []
        for spec in signature.inputs:
            if spec.name in given:
                values = [row[spec.name] for row in rows if spec.name in row]
                if conforms(spec, values):
                    continue
                try:
                    Signature([spec]).validate(pd.DataFrame({spec.name: values}))
                except SignatureError as exc:
                    problems += exc.problems
        if problems:
            raise SignatureError(problems)

    def _lookup(
        self,
        project: Project,
        rows: Sequence[Mapping[str, Any]],
        at: datetime | None = None,
        defaulted: dict[str, str] | None = None,
    ) -> dict[str, list[Any]]:
        # A row without the join keys or request fields is a SchemaError naming them: a 422.
        result: dict[str, list[Any]] = project.features.online(
            list(rows), self.features, at=at, defaulted=defaulted
        )
        return result


def check_rows(rows: Any, tensors: Collection[str] = ()) -> None:
    """Rows are a non-empty list of JSON objects with finite numbers, at most :data:`MAX_ROWS`; only the
    fields named in ``tensors`` (a tensor column of the signature) may hold nested lists, which the
    signature then converts and checks."""
    if not isinstance(rows, Sequence) or isinstance(rows, str | bytes) or not rows:
        raise MalformedInput('Send at least one row: {"rows": [{...}]} or {"entities": {...}}.')
    if len(rows) > MAX_ROWS:
        raise MalformedInput(
            f"A request holds at most {MAX_ROWS:,} rows, got {len(rows):,}; split it, or score files with "
            "`mloop score`."
        )
    for i, row in enumerate(rows):
        if type(row) is not dict and not isinstance(row, Mapping):  # exact dict first: ABC checks cost
            raise MalformedInput(
                f"Row {i} is a {type(row).__name__}, not an object of field names to values."
            )
        for key, value in row.items():
            if type(value) in _PLAIN:  # the common scalars: none of them can be what the checks below refuse
                continue
            if isinstance(value, float) and not math.isfinite(value):
                raise MalformedInput(
                    f"Row {i}, field {key!r}: {value} is not a finite number; send null instead."
                )
            if isinstance(value, dict) or (isinstance(value, list) and key not in tensors):
                raise MalformedInput(
                    f"Row {i}, field {key!r}: nested {type(value).__name__} values are not features; "
                    "send one scalar per field."
                )


_PLAIN = frozenset({int, str, bool, type(None)})  # exact types; float is checked for NaN and inf


def _plain(scores: Any) -> list[Any]:
    array = np.asarray(scores)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        return [None if isinstance(v, float) and not math.isfinite(v) else v for v in array.tolist()]
    return array.tolist()
