"""``project.predictions``: what the prediction log recorded about individual decisions, and the
impressions a recommender's answers made (:meth:`Predictions.impressions`).

:meth:`Predictions.explanations` answers the analyst's "why was every disputed decision made": the sampled
attributions (deployment option ``explain_sample``) of an endpoint's answers, each with its prediction and
the label feedback gave it, optionally only the rows whose label contradicts the decision.

>>> project.deploy("fraud", "fraud", version=3, options={"explain_sample": 0.1})   # doctest: +SKIP
>>> why = project.predictions.explanations("fraud", since="7d", disputed_only=True)  # doctest: +SKIP
>>> why[["request_id", "prediction", "label", "attributions"]]                      # doctest: +SKIP
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mloop._service import Service
from mloop._time import utcnow
from mloop.monitoring.versions import VersionInfo, load_version
from mloop.monitoring.windows import since_time
from mloop.predictions.explanations import read_explanations
from mloop.predictions.impressions import read_impressions
from mloop.predictions.log import predictions_folder


class Predictions(Service):
    """Reads of the prediction log; they need ``monitoring.read`` on ``endpoint:NAME``."""

    def explanations(
        self,
        endpoint: str,
        *,
        since: str | datetime = "1d",
        until: datetime | None = None,
        disputed_only: bool = False,
    ) -> pd.DataFrame:
        """The explained rows of ``endpoint`` logged in ``[since, until)`` (``since``: a time or a span
        back from now, "7d"), oldest first: request_id, row, ts, model, version, prediction, base_value,
        output, method, attributions ({feature: value}), label and labelled_at (None until feedback gives
        one). ``disputed_only``: only labelled rows whose label contradicts the decision: for a binary
        classifier the prediction against the version's decision threshold (0.5 when its card has none),
        for a multiclass one its most probable class; a regressor's every labelled row."""
        self._authorize("monitoring.read", f"endpoint:{endpoint}")
        now = utcnow()
        frame = read_explanations(predictions_folder(self._ctx.settings), endpoint, since_time(since, now),
                                  until, self._ctx.parquet)  # fmt: skip
        if not disputed_only or frame.empty:
            return frame
        labelled = frame[frame["label"].notna()]
        versions: dict[tuple[str, int], VersionInfo] = {}
        keep = []
        for model, version, prediction, label in zip(labelled["model"], labelled["version"],
                                                     labelled["prediction"], labelled["label"], strict=True):  # fmt: skip
            key = (str(model), int(version))
            if key not in versions:
                versions[key] = load_version(self._ctx, *key)
            keep.append(_disputed(versions[key], prediction, label))
        return labelled[np.asarray(keep, dtype=bool)].reset_index(drop=True)

    def impressions(
        self,
        endpoint: str,
        *,
        since: str | datetime = "1d",
        until: datetime | None = None,
        user: str = "user_id",
    ) -> pd.DataFrame:
        """The items ``endpoint``'s answers (lists of item ids) showed in ``[since, until)``, one row per
        item: request_id, row, user_id, item_id, position (0 = first), ts, version; see
        :mod:`mloop.predictions.impressions`. What ranking training sets and live ranking metrics read.

        >>> project.predictions.impressions("recs", since="7d")  # doctest: +SKIP
        """
        self._authorize("monitoring.read", f"endpoint:{endpoint}")
        return read_impressions(predictions_folder(self._ctx.settings), endpoint, since_time(since, utcnow()),
                                until, self._ctx.parquet, user=user)  # fmt: skip


def _disputed(info: VersionInfo, prediction: Any, label: Any) -> bool:
    if info.task == "binary":
        return bool(float(prediction) >= info.threshold) != bool(int(label))
    if info.task == "multiclass" and isinstance(prediction, list):
        top = int(np.argmax(prediction))
        decided = info.classes[top] if info.classes else top
        return str(decided) != str(label)
    return True
