"""A/B analysis of an endpoint split between model versions: per arm the business metric from feedback
(``ctr``: click-through, labels true/false or 1/0; ``mean``: any numeric outcome such as order value),
the lift of the challenger over the champion with an always-valid confidence interval, the always-valid
p-value of the mSPRT, the fixed-horizon sample size, and a decision. The statistics, their formulas and
references are in :mod:`mloop.metrics.sequential`.

**Arms and outcomes.** A plain endpoint: the arm of a logged row is its ``version``, its outcome the
label feedback gave that row. A stage of a pipeline endpoint logs its rows under request id
``RID/<stage>`` while the clicks are sent for the pipeline's request ``RID``: the arm is the stage row's
version and the outcomes are the labels of ``RID``'s rows (read from the pipeline's own log, whose name
is ``pipeline=`` or the endpoint the labels of ``RID`` were filed under; without either, one row per
request). A row without a label yet is **awaiting**: counted, never taken as 0, since an order value or a
click may still come. With ``missing="no_click"`` (or ``"zero"``) a row still unlabelled ``wait`` after
its answer counts as 0: for clicks that is the usual reading once the attribution window has passed.

**Order of the looks.** An outcome enters the sequential test when it became known (its label's
``received_at``; an imputed 0 at answer time + ``wait``), so each look sees only what was known then.

**Decision.** ``ship``: p ≤ α and the lift favours the challenger; ``keep``: p ≤ α against it, or both
arms reached ``max_samples`` outcomes without significance (``reason`` says which); otherwise ``need
more data``. The metric is taken as higher-is-better.

>>> report = project.ab.report("recs", metric="ctr", since="24h")            # doctest: +SKIP
>>> report.decision, report.lift, (report.lift_low, report.lift_high)         # doctest: +SKIP
('ship', 0.031, (0.012, 0.050))
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from mloop._service import Service
from mloop._time import parse_duration, utcnow
from mloop.crypto import PLAIN, ParquetFiles
from mloop.errors import MalformedInput
from mloop.metrics.sequential import MIN_N, msprt, sample_size
from mloop.monitoring.performance import coerce_labels
from mloop.monitoring.windows import since_time
from mloop.predictions.feedback import read_feedback
from mloop.predictions.files import read_predictions
from mloop.predictions.log import predictions_folder
from mloop.predictions.place import LogFolder
from mloop.store.schema import ModelAliasRow, RegisteredModelRow

METRICS = {"ctr": "binary", "mean": "regression"}  # the task coerce_labels reads the labels as
MISSING = {"awaiting": False, "no_click": True, "zero": True}  # does a row unlabelled after `wait` count 0
DECISIONS = ("ship", "keep", "need more data")
_COLUMNS = ["request_id", "row", "ts", "model", "version", "outcome", "known_at"]


@dataclass(frozen=True)
class Arm:
    """One version's outcomes: ``n`` known, ``mean`` with its fixed (1-α) interval, ``awaiting`` rows
    with no label yet and ``unusable`` labels the metric cannot read (a string for ``ctr``, say)."""

    version: int
    n: int
    mean: float | None
    low: float | None
    high: float | None
    awaiting: int = 0
    unusable: int = 0


@dataclass(frozen=True)
class ABReport:
    """The A/B analysis of one endpoint; ``to_dict()`` is what ``--json`` prints and the loop records."""

    endpoint: str
    metric: str
    alpha: float
    mde: float
    control: int | None
    treatment: int | None
    arms: list[Arm]
    lift: float | None = None
    lift_low: float | None = None
    lift_high: float | None = None
    relative_lift: float | None = None
    relative_low: float | None = None
    relative_high: float | None = None
    p_value: float = 1.0
    min_samples: int | None = None  # per arm, fixed horizon, at power `power`
    power: float = 0.8
    max_samples: int | None = None
    decision: str = "need more data"
    reason: str = ""
    since: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def arm(self, version: int | None) -> Arm | None:
        return next((a for a in self.arms if a.version == version), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        """The report as a markdown table and a verdict (``mloop ab report --format markdown``)."""
        lines = [f"### A/B on `{self.endpoint}`: {self.metric}", "",
                 "| arm | version | n | awaiting | mean | interval |", "|---|--:|--:|--:|--:|---|"]  # fmt: skip
        for a in self.arms:
            role = (
                "control" if a.version == self.control else "treatment" if a.version == self.treatment else ""
            )
            lines.append(f"| {role} | v{a.version} | {a.n} | {a.awaiting} | {_num(a.mean)} | "
                         f"[{_num(a.low)}, {_num(a.high)}] |")  # fmt: skip
        lines += ["", f"- lift: {_num(self.lift)} [{_num(self.lift_low)}, {_num(self.lift_high)}] "
                      f"({_pct(self.relative_lift)} [{_pct(self.relative_low)}, {_pct(self.relative_high)}]), "
                      "always-valid interval",
                  f"- always-valid p-value: {self.p_value:.4g} (alpha {self.alpha})",
                  f"- fixed-horizon sample size per arm for a {self.mde:.0%} lift at power {self.power}: "
                  f"{self.min_samples if self.min_samples is not None else '-'}",
                  f"- decision: **{self.decision}**: {self.reason}"]  # fmt: skip
        return "\n".join(lines)


def outcomes(folder: Path | LogFolder, endpoint: str, since: datetime, until: datetime | None = None, *,
             metric: str = "ctr", missing: str = "awaiting", wait: timedelta = timedelta(hours=1),
             now: datetime | None = None, pipeline: str | None = None, revision: int | None = None,
             parquet: ParquetFiles = PLAIN) -> pd.DataFrame:  # fmt: skip
    """One row per outcome unit answered by ``endpoint`` in ``[since, until)``: request_id (``RID`` for a
    stage's rows), row, ts (the answer), version (the arm), outcome (float; NaN while awaiting),
    known_at (when the outcome became known), unusable (a label the metric cannot read). With
    ``revision``, only the answers of that deployment revision or a later one (a loop step's own)."""
    task, zero = _metric(metric), _missing(missing)
    frame = read_predictions(folder, endpoint, since, until, parquet)
    if frame.empty:
        return pd.DataFrame(columns=[*_COLUMNS, "unusable"])
    frame = frame[frame["status"] == "ok"]
    if revision is not None:
        frame = frame[frame["revision"] >= revision]
    staged = frame["request_id"].str.contains("/", regex=False)
    units = [frame.loc[~staged, ["request_id", "row", "ts", "model", "version"]]]
    labels = read_feedback(folder, None if staged.any() else endpoint, parquet=parquet)
    labels = labels.drop_duplicates(["request_id", "row"], keep="last")
    if staged.any():
        units.append(_pipeline_units(folder, frame[staged], labels, since, until, pipeline, parquet))
    found = pd.concat(units, ignore_index=True)
    found["row"] = found["row"].astype("int64")
    labels = labels[["request_id", "row", "label", "received_at"]].astype({"row": "int64"})
    found = found.merge(labels, on=["request_id", "row"], how="left")
    values, _, _ = coerce_labels(found["label"], task)
    present = found["label"].notna().to_numpy()
    found["unusable"] = present & np.isnan(values)
    found["outcome"], found["known_at"] = values, found["received_at"]
    if zero:
        ts = pd.to_datetime(found["ts"], utc=True)
        due = (~present) & (ts + wait <= pd.Timestamp(now or utcnow())).to_numpy()
        found.loc[due, "outcome"] = 0.0
        found.loc[due, "known_at"] = ts[due] + wait
    return found[[*_COLUMNS, "unusable"]].reset_index(drop=True)


def analyse(units: pd.DataFrame, endpoint: str, *, metric: str = "ctr", alpha: float = 0.05, mde: float = 0.1,
            power: float = 0.8, control: int | None = None, treatment: int | None = None,
            max_samples: int | None = None, min_n: int = MIN_N) -> ABReport:  # fmt: skip
    """The report of :func:`outcomes`' rows: ``control`` defaults to the lowest version answering,
    ``treatment`` to the newest other one."""
    binary = _metric(metric) == "binary"
    arms = [_arm(int(str(v)), group, alpha) for v, group in units.groupby("version")] if len(units) else []
    versions = [a.version for a in arms]
    control = control if control is not None else (min(versions) if versions else None)
    if treatment is None:
        others = [v for v in versions if v != control]
        treatment = max(others) if others else None
    base = ABReport(
        endpoint, metric, alpha, mde, control, treatment, arms, power=power, max_samples=max_samples
    )
    if control is None or treatment is None or control not in versions or treatment not in versions:
        answered = ", ".join(f"v{v}" for v in versions) or "no version"
        return replace(base, reason=f"needs two arms with answers; {answered} answered in the range")
    known = units[units["outcome"].notna() & units["version"].isin([control, treatment])]
    known = known.sort_values(["known_at", "ts"], kind="stable")
    test = msprt((known["version"] == treatment).to_numpy(), known["outcome"].to_numpy(dtype=np.float64),
                 binary=binary, alpha=alpha, mde=mde, min_n=min_n)  # fmt: skip
    a, b = arms[versions.index(control)], arms[versions.index(treatment)]
    lift = test.lift if a.n and b.n else None
    # relative to the control's mean, taken as known (its own noise is in n_A's term of V)
    scale = abs(a.mean) if a.mean else None
    relative = [None if v is None or scale is None else v / scale for v in (lift, test.low, test.high)]
    decision, reason = _decide(test, a, b, alpha, max_samples, min_n)
    return replace(base, lift=lift, lift_low=test.low, lift_high=test.high, relative_lift=relative[0],
                   relative_low=relative[1], relative_high=relative[2], p_value=test.p_value,
                   min_samples=_planned(known, control, a, mde, alpha, power, binary), decision=decision,
                   reason=reason, extra={"tau": test.tau, "looks": test.looks})  # fmt: skip


class ABTests(Service):
    """``project.ab``: A/B reports of endpoints; they need ``monitoring.read`` on ``endpoint:NAME``."""

    def report(self, endpoint: str, *, metric: str = "ctr", since: str | datetime = "24h",
               until: datetime | None = None, alpha: float = 0.05, mde: float = 0.1, power: float = 0.8,
               missing: str = "awaiting", wait: str | timedelta = "1h", control: int | None = None,
               treatment: int | None = None, max_samples: int | None = None,
               pipeline: str | None = None) -> ABReport:  # fmt: skip
        """The A/B report of ``endpoint``'s answers since ``since`` (a span back from now or a time);
        ``control`` defaults to the champion of the model answering (else the lowest version)."""
        self._authorize("monitoring.read", f"endpoint:{endpoint}")
        now = utcnow()
        start = since_time(since, now)
        span = parse_duration(wait, what="wait") or timedelta(0)
        units = outcomes(predictions_folder(self._ctx.settings), endpoint, start, until, metric=metric,
                         missing=missing, wait=span, now=now, pipeline=pipeline, parquet=self._ctx.parquet)  # fmt: skip
        if control is None and len(units):
            control = self._champion(set(units["model"]), {int(v) for v in units["version"]})
        report = analyse(units, endpoint, metric=metric, alpha=alpha, mde=mde, power=power, control=control,
                         treatment=treatment, max_samples=max_samples)  # fmt: skip
        return replace(report, since=start.isoformat())

    def _champion(self, models: set[str], versions: set[int]) -> int | None:
        """The version the ``champion`` alias of the endpoint's model names, if it is an arm (read
        without ``models.read``: the caller sees versions in the report anyway)."""
        with self._ctx.store.read() as session:
            for name in sorted(models):
                model = session.scalar(select(RegisteredModelRow).where(
                    RegisteredModelRow.project_id == self._ctx.project_id, RegisteredModelRow.name == name))  # fmt: skip
                alias = None if model is None else session.get(ModelAliasRow, (model.id, "champion"))
                if alias is not None and alias.version in versions:
                    return int(alias.version)
        return None


# ---- helpers ------------------------------------------------------------------------------------------


def _pipeline_units(folder: Any, stage: pd.DataFrame, labels: pd.DataFrame, since: datetime,
                    until: datetime | None, pipeline: str | None, parquet: ParquetFiles) -> pd.DataFrame:  # fmt: skip
    """The rows of the pipeline requests a stage served, with the stage's version as their arm."""
    parents = stage.assign(request_id=stage["request_id"].str.rsplit("/", n=1).str[0])
    arm = parents.sort_values("ts").drop_duplicates("request_id")[["request_id", "ts", "model", "version"]]
    if pipeline is None:  # the endpoint the clicks of these requests were filed under
        filed = labels.loc[labels["request_id"].isin(arm["request_id"]), "endpoint"]
        pipeline = str(filed.mode().iloc[0]) if len(filed) else None
    if pipeline is not None:
        rows = read_predictions(folder, pipeline, since - timedelta(minutes=5), until, parquet)
        rows = rows.loc[
            (rows["status"] == "ok") & rows["request_id"].isin(arm["request_id"]), ["request_id", "row"]
        ]
    else:  # nothing labelled yet and no pipeline named: one outcome per request
        rows = pd.DataFrame({"request_id": arm["request_id"], "row": 0})
    rows = rows.drop_duplicates(["request_id", "row"])
    return rows.merge(arm, on="request_id", how="inner")[["request_id", "row", "ts", "model", "version"]]


def _arm(version: int, group: pd.DataFrame, alpha: float) -> Arm:
    known = group["outcome"].dropna().to_numpy(dtype=np.float64)
    awaiting = int((group["outcome"].isna() & ~group["unusable"].astype(bool)).sum())
    unusable = int(group["unusable"].astype(bool).sum())
    if not len(known):
        return Arm(version, 0, None, None, None, awaiting, unusable)
    mean = float(known.mean())
    if len(known) < 2:  # no spread to measure yet (and None, not NaN, keeps the report valid JSON)
        return Arm(version, 1, mean, None, None, awaiting, unusable)
    from scipy.stats import norm  # here, not at the top: it costs every CLI command ~0.5 s to import

    half = float(norm.ppf(1 - alpha / 2) * known.std(ddof=1) / math.sqrt(len(known)))
    return Arm(version, len(known), mean, mean - half, mean + half, awaiting, unusable)


def _planned(known: pd.DataFrame, control: int, a: Arm, mde: float, alpha: float, power: float,
             binary: bool) -> int | None:  # fmt: skip
    if a.mean is None or a.mean == 0 or (binary and not 0 < a.mean < 1):
        return None
    sd = None if binary else float(known.loc[known["version"] == control, "outcome"].std(ddof=1))
    if not binary and not (sd and sd > 0):
        return None
    return sample_size(a.mean, mde, alpha=alpha, power=power, binary=binary, sd=sd)


def _decide(test: Any, a: Arm, b: Arm, alpha: float, max_samples: int | None, min_n: int) -> tuple[str, str]:
    if test.looks == 0:
        return "need more data", f"{a.n} and {b.n} outcomes; the test starts at {min_n} in each arm"
    if test.p_value <= alpha:
        better = test.lift > 0
        verdict = "ship" if better else "keep"
        side = "above" if better else "below"
        return verdict, (f"v{b.version} is {side} v{a.version} (lift {test.lift:+.4g}, always-valid p "
                         f"{test.p_value:.3g} <= {alpha}): significant {'for' if better else 'against'} the challenger")  # fmt: skip
    if max_samples is not None and min(a.n, b.n) >= max_samples:
        return "keep", (f"maximum sample reached without significance: {a.n} and {b.n} outcomes (max "
                        f"{max_samples} per arm), p {test.p_value:.3g} > {alpha}")  # fmt: skip
    return (
        "need more data",
        f"not significant yet: p {test.p_value:.3g} > {alpha} after {a.n} and {b.n} outcomes",
    )


def _metric(metric: str) -> str:
    if metric not in METRICS:
        raise MalformedInput(f"Unknown A/B metric {metric!r}: use 'ctr' (labels true/false or 1/0) or 'mean' "
                             "(a numeric outcome such as order value).")  # fmt: skip
    return METRICS[metric]


def _missing(missing: str) -> bool:
    if missing not in MISSING:
        raise MalformedInput(f"missing={missing!r}: use 'awaiting' (an unlabelled row is not counted yet) or "
                             "'no_click'/'zero' (unlabelled after `wait` counts as 0).")  # fmt: skip
    return MISSING[missing]


def _num(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"
