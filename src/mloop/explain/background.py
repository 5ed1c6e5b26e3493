"""The background sample: the rows of training inputs that a linear model's and the fallback's attributions
are measured against (``base_value`` is the model's expected output over them).

mloop does not keep scalar training rows with a model version (the reference profile holds per-column
statistics, the reference sample only tensor columns), and a background silently made up from marginals
would change what the values mean. So the caller passes one, ``background=train_frame.sample(100)``, and
a method that needs it says so when it is missing. The fallback evaluates every coalition on every
background row, so it keeps at most :data:`ROWS` of them (drawn with a fixed seed).

>>> background_rows(pd.DataFrame({"a": range(500), "b": 0}), ["a", "b"]).shape
(50, 2)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mloop.explain.attributions import ExplainError

ROWS = 50


def require_background(background: pd.DataFrame | None, method: str) -> pd.DataFrame:
    """``background``, or :class:`ExplainError` saying how to pass one."""
    if background is None:
        raise ExplainError(
            f"{method} measures attributions against a background sample of the training inputs, and none "
            "was given: pass background=train_frame.sample(100, random_state=0) (rows with the model's input "
            "columns)."
        )
    return background


def background_rows(background: pd.DataFrame, features: list[str], *, rows: int = ROWS, seed: int = 0
                    ) -> pd.DataFrame:  # fmt: skip
    """``background``'s columns ``features`` (in that order), at most ``rows`` of them."""
    missing = [f for f in features if f not in background.columns]
    if missing:
        raise ExplainError(
            f"The background lacks the model's input columns {', '.join(missing)}: pass rows of the "
            "training inputs with every column the model takes."
        )
    out = background[features]
    if len(out) > rows:
        picked = np.sort(np.random.default_rng(seed).choice(len(out), size=rows, replace=False))
        out = out.iloc[picked]
    return out
