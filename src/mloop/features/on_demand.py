"""On-demand views, written once for training sets and for serving: which feature values they read,
and how their function runs on a batch. Training and serving call the same two functions, so an
on-demand feature cannot be computed one way offline and another way online.

>>> wanted, hidden = inputs_needed(resolve(["amount_ratio:*"], objects))   # doctest: +SKIP
>>> wanted, hidden
({'customer_stats': ['amount_mean_1h']}, [('customer_stats', 'amount_mean_1h')])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import SchemaError
from mloop.features.definitions import OnDemandView
from mloop.features.refs import Resolved


def inputs_needed(resolved: Resolved) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """The features to read from each feature view: those asked for, then the inputs of the on-demand
    views asked for. ``hidden`` lists the ``(view, feature)`` inputs that were not asked for, which the
    answer leaves out. ``resolved`` is not changed."""
    wanted = {name: list(features) for name, features in resolved.views.items()}
    hidden: list[tuple[str, str]] = []
    for odv, _ in resolved.on_demand:
        for ref in odv.inputs:
            view, feature = ref.split(":")
            if feature not in wanted.setdefault(view, []):
                wanted[view].append(feature)
                hidden.append((view, feature))
    return wanted, hidden


def run_on_demand(odv: OnDemandView, frame: pd.DataFrame) -> dict[str, list[Any]]:
    """Run an on-demand view's function on a batch; the same call builds training sets and serves."""
    assert odv.fn is not None
    try:
        result = odv.fn(frame)
    except Exception as exc:
        raise SchemaError(
            f"On-demand view {odv.name!r}: its function failed: {type(exc).__name__}: {exc}"
        ) from exc
    if isinstance(result, pd.DataFrame):
        result = {c: result[c] for c in result.columns}
    if not isinstance(result, Mapping):
        raise SchemaError(
            f"On-demand view {odv.name!r}: its function must return a DataFrame or a dict of columns."
        )
    out = {}
    for output in odv.outputs:
        if output.name not in result:
            raise SchemaError(
                f"On-demand view {odv.name!r}: its function returned {sorted(result)}, not output {output.name!r}."
            )
        out[output.name] = _plain(result[output.name])
    return out


def _plain(values: Any) -> list[Any]:
    """An output column as a list of Python values, None for a missing one. Numbers and booleans go
    through numpy (a tenth of the general path's time on a served row); anything else through pandas,
    which boxes timestamps and knows every missing-value marker."""
    array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if array.ndim == 1 and array.dtype.kind in "biuf":
        plain = array.tolist()
        return [None if v != v else v for v in plain] if array.dtype.kind == "f" else plain
    series = pd.Series(values).astype(object)
    return [None if pd.isna(v) else v for v in series.tolist()]
