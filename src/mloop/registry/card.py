"""Model cards: what a model is for, what it learnt from, how well it does and for whom, what it cannot do,
and where it came from. Built for every version at registration from the facts given and what the registry
knows; what nobody recorded reads "not recorded", never a guess.

Facts the training pipeline may pass as ``card=`` (every key optional; the shapes that
:mod:`mloop.metrics.evaluation` and ``TrainingSet.summary()`` produce are read as they are)::

    {
      "intended_use": "Score card transactions for fraud review; not for credit decisions.",
      "training_data": {"views": [{"name": ..., "version": ...}] or {name: version} or ["name:3"],
                        "time_range": [start, end] or {"start": ..., "end": ...},
                        "rows": 120000 or {"train": ..., "valid": ..., "test": ...},
                        "label": "is_fraud", "label_balance": 0.02 (positive rate) or {"0": 117600, "1": 2400},
                        "notes": [...]},
      "metrics": {"auc": 0.91} or {"train": {"auc": 0.97}, "valid": {...}, "test": {"auc": 0.91}},
      "threshold": 0.37,
      "slices": {"country": {"DE": {"rows": 5400, "roc_auc": 0.92, ...}}} or {"country=DE": {...}},
      "fairness": {"country": {"equal_opportunity_difference": 0.17, "groups": {"DE": {"rows": ...,
                   "true_positive_rate": 0.81}, ...}}}
                  or {"country": {"metric": "tpr", "groups": {"DE": 0.81, "FR": 0.64}}}  (gap = max - min)
                  or {"country": 0.17},
      "limitations": ["Not validated on merchants outside the EU."],
      "importance": {"mean_abs": {"amount": 0.8, ...}, "method": "tree_shap", "output": "log_odds",
                     "rows": 2000} or {"note": "not computed: ..."}   (mloop.explain.importance.measure)
    }

Limitations are also derived: slices with fewer than 100 rows or under 1% of their attribute's rows,
fairness gaps above 0.1, no metrics at all, a metric more than 10% worse on test than on train, no signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mloop.explain.importance import card_lines
from mloop.models.flavours import json_safe

NOT_RECORDED = "not recorded"
SMALL_SLICE_ROWS = 100
SMALL_SLICE_SHARE = 0.01
FAIRNESS_GAP = 0.1
TRAIN_TEST_GAP = 0.1  # relative: |train - test| / |train|
SECTIONS = (
    "Intended use",
    "Training data",
    "Inputs and outputs",
    "Metrics",
    "Fairness gaps",
    "Global importance",
    "Limitations",
    "Lineage",
)
_SPLITS_TRAIN = ("train", "training")
_SPLITS_TEST = ("test", "holdout", "validation", "valid", "val", "eval")
_SPLIT_ORDER = ("train", "training", "validation", "valid", "val", "eval", "test", "holdout")
_ROWS = ("rows", "n", "count")
# Counts and settings that evaluation reports beside the metrics: kept in the JSON, left out of the tables.
_HIDDEN = {"positives", "tp", "fp", "tn", "fn", "threshold", "single_class", "probabilities"}
# Not measures of quality, so a train/test difference in them says nothing about overfitting.
_NOT_QUALITY = {*_HIDDEN, *_ROWS, "positive_rate"}
# Which per-group rate each fairness difference is the spread of.
_RATE_OF = {
    "demographic_parity_difference": "selection_rate",
    "equal_opportunity_difference": "true_positive_rate",
}


def build(
    facts: Mapping[str, Any] | None,
    *,
    description: str = "",
    metrics: Mapping[str, Any] | None = None,
    lineage: Mapping[str, Any] | None = None,
    has_signature: bool = True,
) -> dict[str, Any]:
    """The card of a new version, as stored in ``model_versions.card``."""
    facts = json_safe(dict(facts or {}))
    stated = facts.get("limitations") or []
    card: dict[str, Any] = {
        "description": description,
        "intended_use": facts.get("intended_use") or description or None,
        "training_data": facts.get("training_data") or None,
        "metrics": facts.get("metrics") or json_safe(dict(metrics or {})) or None,
        "threshold": facts.get("threshold"),
        "slices": _slices(facts.get("slices")) or None,
        "fairness": _fairness(facts.get("fairness")) or None,
        "importance": facts.get("importance") or None,
        "lineage": json_safe(dict(lineage or {})),
    }
    card["limitations"] = [
        *(
            {"kind": "stated", "detail": str(text)}
            for text in ([stated] if isinstance(stated, str) else stated)
        ),
        *derive_limitations(card, has_signature=has_signature),
    ]
    extra = {k: v for k, v in facts.items() if k not in card}
    if extra:
        card["other"] = extra
    return card


def derive_limitations(card: Mapping[str, Any], *, has_signature: bool = True) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    if not card.get("metrics"):
        found.append(
            {"kind": "metrics_missing", "detail": "No metrics were recorded: the model's quality is unknown."}
        )
    for name, train, test in _train_test_pairs(card.get("metrics") or {}):
        if abs(train) > 1e-12 and abs(train - test) / abs(train) > TRAIN_TEST_GAP:
            found.append(
                {
                    "kind": "train_test_gap",
                    "detail": f"{name} is {_num(train)} on training data but {_num(test)} on test data "
                    f"({abs(train - test) / abs(train):.0%} apart): the model may be overfit.",
                }
            )
    slices = card.get("slices") or {}
    totals: dict[str, int] = {}
    for name, item in slices.items():
        if item.get("rows") is not None:
            totals[_attribute(name)] = totals.get(_attribute(name), 0) + int(item["rows"])
    for name, item in slices.items():
        rows = item.get("rows")
        if rows is None:
            continue
        total = totals[_attribute(name)]
        share = rows / total if total else 0.0
        if rows < SMALL_SLICE_ROWS or share < SMALL_SLICE_SHARE:
            found.append(
                {
                    "kind": "small_slice",
                    "detail": f"Slice {name} has only {rows:,} rows ({share:.1%} of {total:,}): its metrics are "
                    "unreliable.",
                }
            )
    for item in card.get("fairness") or []:
        gap = item.get("gap")
        if gap is not None and gap > FAIRNESS_GAP:
            groups = item.get("groups") or {}
            spread = f" ({', '.join(f'{g} {_num(v)}' for g, v in groups.items())})" if groups else ""
            found.append(
                {
                    "kind": "fairness_gap",
                    "detail": f"{item.get('metric') or 'The metric'} differs by {_num(gap)} across "
                    f"{item['attribute']}{spread}, more than {FAIRNESS_GAP}.",
                }
            )
    if not has_signature:
        found.append(
            {
                "kind": "no_signature",
                "detail": "No signature was recorded: inputs are not checked before predictions.",
            }
        )
    return found


def render_markdown(
    card: Mapping[str, Any], header: Mapping[str, Any], signature: Mapping[str, Any] | None
) -> str:
    """The card as Markdown; ``header`` holds the version's name, number, stage, aliases and so on."""
    lines = [f"# Model card: {header['name']} version {header['version']}", ""]
    lines += ["| | |", "|---|---|"]
    for key, value in header.items():
        if key not in ("name", "version"):
            lines.append(f"| {key} | {_cell(value)} |")
    lines += ["", "## Intended use", "", str(card.get("intended_use") or NOT_RECORDED), ""]
    lines += ["## Training data", "", *_training_data(card.get("training_data") or {}), ""]
    lines += ["## Inputs and outputs", "", *_signature(signature), ""]
    lines += [
        "## Metrics",
        "",
        *_metrics(card.get("metrics") or {}, card.get("slices") or {}, card.get("threshold")),
        "",
    ]
    lines += ["## Fairness gaps", "", *_fairness_lines(card.get("fairness") or []), ""]
    lines += ["## Global importance", "", *card_lines(card.get("importance")), ""]
    limitations = card.get("limitations") or []
    lines += ["## Limitations", ""]
    lines += [f"- {item['detail']}" for item in limitations] or ["None found, and none stated."]
    lines += ["", "## Lineage", "", *_lineage(card.get("lineage") or {}, card.get("training_data") or {}), ""]
    return "\n".join(lines)


# ---- normalising facts -----------------------------------------------------------------------------------


def _slices(raw: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if not isinstance(raw, Mapping):
        return out
    for name, value in raw.items():
        if not isinstance(value, Mapping):
            continue
        if _is_slice(value):
            out[str(name)] = _slice(value)
        else:  # grouped by attribute: {"country": {"DE": {...}}}
            for group, item in value.items():
                if isinstance(item, Mapping):
                    out[f"{name}={group}"] = _slice(item)
    return out


def _is_slice(value: Mapping[str, Any]) -> bool:
    return any(k in value for k in (*_ROWS, "metrics")) or any(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
    )


def _slice(value: Mapping[str, Any]) -> dict[str, Any]:
    rows = next((value[k] for k in _ROWS if k in value), None)
    metrics = value.get("metrics")
    if not isinstance(metrics, Mapping):
        metrics = {k: v for k, v in value.items() if k not in _ROWS and (v is None or _is_number(v))}
    return {"rows": int(rows) if isinstance(rows, int | float) else None, "metrics": dict(metrics)}


def _fairness(raw: Any) -> list[dict[str, Any]]:
    """One row per (attribute, metric): ``{"attribute", "metric", "gap", "groups": {group: value},
    "rows": {group: rows}}``."""
    out: list[dict[str, Any]] = []
    if not isinstance(raw, Mapping):
        return out
    for attribute, value in raw.items():
        if _is_number(value):
            out.append(_gap_row(attribute, None, value, {}, {}))
            continue
        if not isinstance(value, Mapping):
            continue
        found = value.get("groups")
        groups: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        named = {k: v for k, v in value.items() if str(k).endswith(("_difference", "_gap"))}
        if named:  # the shape of mloop.metrics.evaluation.fairness
            for metric, gap in named.items():
                rate = _RATE_OF.get(str(metric))
                per_group = {g: d.get(rate) for g, d in groups.items() if isinstance(d, Mapping) and rate}
                sizes = {g: d["rows"] for g, d in groups.items() if isinstance(d, Mapping) and "rows" in d}
                out.append(_gap_row(attribute, metric, gap, per_group, sizes))
            continue
        if not groups and not ({"gap", "metric"} & set(value)):
            groups = value  # {"DE": 0.81, "FR": 0.64}
        out.append(
            _gap_row(
                attribute,
                value.get("metric") if groups is not value else None,
                value.get("gap") if groups is not value else None,
                groups,
                {},
            )
        )
    return out


def _gap_row(
    attribute: Any, metric: Any, gap: Any, groups: Mapping[str, Any], sizes: Mapping[str, Any]
) -> dict[str, Any]:
    numbers = {str(g): float(v) for g, v in groups.items() if _is_number(v)}
    if not _is_number(gap):
        gap = max(numbers.values()) - min(numbers.values()) if len(numbers) >= 2 else None
    return {
        "attribute": str(attribute),
        "metric": str(metric) if metric is not None else None,
        "gap": float(gap) if gap is not None else None,
        "groups": numbers,
        "rows": {str(g): int(n) for g, n in sizes.items() if _is_number(n)},
    }


def _train_test_pairs(metrics: Mapping[str, Any]) -> list[tuple[str, float, float]]:
    train, test = _split(metrics, _SPLITS_TRAIN), _split(metrics, _SPLITS_TEST)
    return [(name, train[name], test[name]) for name in train if name in test]


def _split(metrics: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, float]:
    for name in names:
        nested = metrics.get(name)
        if isinstance(nested, Mapping):
            return {k: float(v) for k, v in nested.items() if _is_number(v) and k not in _NOT_QUALITY}
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if not _is_number(value) or key in _NOT_QUALITY:
            continue
        for split in names:
            if key.startswith(f"{split}_"):
                out.setdefault(key[len(split) + 1 :], float(value))
            elif key.endswith(f"_{split}"):
                out.setdefault(key[: -len(split) - 1], float(value))
    return out


def _attribute(slice_name: str) -> str:
    return slice_name.split("=", 1)[0] if "=" in slice_name else ""


# ---- rendering -------------------------------------------------------------------------------------------


def _training_data(data: Mapping[str, Any]) -> list[str]:
    rows = data.get("rows")
    if isinstance(rows, Mapping):
        order = {"train": 0, "valid": 1, "test": 2}  # in time order, whatever order the JSON kept
        parts = {str(k): v for k, v in sorted(rows.items(), key=lambda kv: (order.get(str(kv[0]), 3), str(kv[0])))
                 if _is_number(v)}  # fmt: skip
        rows = sum(parts.values()) if parts else None
    else:
        parts = {
            k.removesuffix("_rows"): data[k] for k in ("train_rows", "valid_rows", "test_rows") if k in data
        }
    row_text = _int(rows) if rows is not None else NOT_RECORDED
    if parts:
        row_text += f" ({', '.join(f'{k} {_int(v)}' for k, v in parts.items())})"
    lines = [
        f"- Feature views: {_views(data.get('views')) or NOT_RECORDED}",
        f"- Time range: {_range(data.get('time_range')) or NOT_RECORDED}",
        f"- Rows: {row_text}",
        f"- Label: {data.get('label') or NOT_RECORDED}",
        f"- Label balance: {_balance(data.get('label_balance')) or NOT_RECORDED}",
    ]
    notes = data.get("notes")
    if notes:
        lines.append(f"- Notes: {'; '.join(map(str, notes)) if isinstance(notes, list | tuple) else notes}")
    return lines


def _signature(signature: Mapping[str, Any] | None) -> list[str]:
    if not signature:
        return [f"Signature: {NOT_RECORDED} (inputs are not checked before predictions)."]
    lines = ["| column | direction | type | nullable |", "|---|---|---|---|"]
    for direction in ("inputs", "outputs"):
        for col in signature.get(direction, []):
            dtype = col["dtype"] + (" (categorical)" if col.get("categories") is not None else "")
            lines.append(
                f"| {col['name']} | {direction[:-1]} | {dtype} | {'yes' if col.get('nullable') else 'no'} |"
            )
    return lines


def _metrics(metrics: Mapping[str, Any], slices: Mapping[str, Any], threshold: Any = None) -> list[str]:
    lines = ["### Overall", ""]
    if _is_number(threshold):
        lines += [f"Decision threshold: {_num(threshold)}", ""]
    # Stored JSON sorts keys; show splits in the order a reader expects: train, validation, test.
    order = _SPLIT_ORDER
    nested = {
        k: metrics[k]
        for k in sorted(metrics, key=lambda k: order.index(k) if k in order else len(order))
        if isinstance(metrics[k], Mapping)
    }
    flat = {k: v for k, v in metrics.items() if not isinstance(v, Mapping) and _shown(k, v)}
    if not metrics:
        lines.append(NOT_RECORDED)
    if flat:
        lines += ["| metric | value |", "|---|---|", *(f"| {k} | {_num(v)} |" for k, v in flat.items())]
    if nested:
        names = sorted({m for v in nested.values() for m, x in v.items() if _shown(m, x)})
        lines += [
            "| metric | " + " | ".join(nested) + " |",
            "|---|" + "---|" * len(nested),
            *(f"| {m} | " + " | ".join(_num(nested[s].get(m)) for s in nested) + " |" for m in names),
        ]
    lines += ["", "### Per slice", ""]
    if not slices:
        lines.append(NOT_RECORDED)
        return lines
    names = sorted({m for item in slices.values() for m, x in item["metrics"].items() if _shown(m, x)})
    lines += ["| slice | rows | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for name, item in slices.items():
        rows = _int(item["rows"]) if item.get("rows") is not None else NOT_RECORDED
        lines.append(f"| {name} | {rows} | " + " | ".join(_num(item["metrics"].get(m)) for m in names) + " |")
    return lines


def _fairness_lines(fairness: list[dict[str, Any]]) -> list[str]:
    if not fairness:
        return [NOT_RECORDED]
    lines = ["| attribute | metric | gap | groups |", "|---|---|---|---|"]
    for item in fairness:
        sizes = item.get("rows") or {}
        groups = ", ".join(
            f"{g}: {_num(v)}" + (f" (n={sizes[g]:,})" if g in sizes else "")
            for g, v in (item.get("groups") or {}).items()
        )
        lines.append(
            f"| {item['attribute']} | {item.get('metric') or NOT_RECORDED} | {_num(item.get('gap'))} | {groups or '-'} |"
        )
    return lines


def _lineage(lineage: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
    found = lineage.get("run")
    run: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    run_id = lineage.get("run_id") or run.get("id")
    run_text = (
        f"{run_id}" + (f" (experiment {run['experiment']})" if run.get("experiment") else "")
        if run_id
        else None
    )
    views = _views(lineage.get("feature_views")) or _views(data.get("views"))
    fingerprint = lineage.get("training_set_fingerprint") or lineage.get("fingerprint")
    time_range = _range(lineage.get("data_time_range")) or _range(data.get("time_range"))
    return [
        f"- Run: {run_text or NOT_RECORDED}",
        f"- Code version (git commit): {lineage.get('git_commit') or lineage.get('code_version') or NOT_RECORDED}",
        f"- Feature views: {views or NOT_RECORDED}",
        f"- Training-set fingerprint: {fingerprint or NOT_RECORDED}",
        f"- Data time range: {time_range or NOT_RECORDED}",
    ]


def _views(views: Any) -> str:
    if isinstance(views, Mapping):
        return ", ".join(f"{name} (version {version})" for name, version in views.items())
    if isinstance(views, list | tuple):
        out = []
        for view in views:
            if isinstance(view, Mapping):
                version = view.get("version")
                out.append(f"{view.get('name')}" + (f" (version {version})" if version is not None else ""))
            else:
                out.append(str(view))
        return ", ".join(out)
    return str(views) if views else ""


def _range(value: Any) -> str:
    if isinstance(value, Mapping) and (value.get("start") or value.get("end")):
        return f"{value.get('start') or '?'} to {value.get('end') or '?'}"
    if isinstance(value, list | tuple) and len(value) == 2:
        return f"{value[0]} to {value[1]}"
    return str(value) if value else ""


def _balance(value: Any) -> str:
    if _is_number(value):
        return f"positive rate {value:.2%}"
    if not isinstance(value, Mapping) or not value:
        return str(value) if value else ""
    numbers = {k: float(v) for k, v in value.items() if _is_number(v)}
    total = sum(numbers.values())
    if total > 1.5:  # counts
        return ", ".join(f"{k}: {int(v):,} ({v / total:.1%})" for k, v in numbers.items())
    return ", ".join(f"{k}: {v:.1%}" for k, v in numbers.items())


def shown_metric(name: str, value: Any) -> bool:
    """Whether a card's metrics table shows ``name``: a measure of quality, not a count or a setting."""
    return _shown(name, value) and value is not None


def _shown(name: str, value: Any) -> bool:
    return name not in _HIDDEN and name not in _ROWS and (value is None or _is_number(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _int(value: Any) -> str:
    return f"{int(value):,}" if _is_number(value) else str(value)


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return "-" if value in (None, "") else str(value).replace("|", "\\|")
