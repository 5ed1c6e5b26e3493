"""Data: declared schemas, models trained on heavily quarantined datasets, stale online features behind live
endpoints, and feature views no model uses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mloop._time import parse_duration
from mloop.data.schema import Dataset
from mloop.review.facts import Facts
from mloop.review.model import Outcome, check, failed, not_applicable, passed


def _definitions(facts: Facts) -> dict[tuple[str, str], Any]:
    return facts.memo("feature_definitions", lambda: facts.platform.features.definitions())


def _written_by_hand(schema: Dataset) -> list[str]:
    """What in ``schema`` inference never writes (a key, a constraint, a nullability choice, a description):
    the signs that a person declared it. Inference makes every column but the timestamp nullable and
    constrains nothing (mloop.data.infer)."""
    signs = [f"key {list(schema.key)}"] if schema.key else []
    signs += ["a description"] if schema.description else []
    signs += ["extra_columns: ignore"] if schema.extra_columns == "ignore" else []
    for c in schema.columns:
        if any(v is not None for v in (c.min, c.max, c.allowed, c.regex)):
            signs.append(f"constraints on {c.name}")
        elif not c.nullable and c.name != schema.timestamp and c.dtype != "tensor":
            signs.append(f"{c.name} not nullable")
        elif c.description or c.pii:
            signs.append(f"{c.name} described")
    return signs


@check(
    "data.schema",
    concern="maintainability",
    severity="medium",
    title="Every dataset has a declared schema, not only one inferred from its first file",
    fix="Write the schema (key, types, nullability, min/max/allowed) in a YAML file and record it: "
    "`mloop data schema NAME --set schema.yaml`, or ingest with `mloop data ingest FILE --schema schema.yaml`",
    mlts=("data-1",),
)
def schema(facts: Facts) -> Outcome:
    datasets = facts.platform.data.list()
    if not datasets:
        return not_applicable("no dataset ingested")
    declared_events = {e.resource for e in facts.events("data.schema")}
    inferred, evidence = [], []
    for info in datasets:
        stored = facts.platform.data.schema(info.name)
        signs = _written_by_hand(stored)
        if f"dataset:{info.name}" in declared_events:
            evidence.append(f"dataset {info.name}: schema v{info.schema_version} recorded with data.schema")
        elif signs:
            evidence.append(
                f"dataset {info.name}: schema v{info.schema_version} declares {', '.join(signs[:3])}"
            )
        else:
            inferred.append(info.name)
            evidence.append(
                f"dataset {info.name}: schema v{info.schema_version} as inferred (no key, no constraint)"
            )
    if inferred:
        return failed(f"{len(inferred)} of {len(datasets)} dataset(s) only have an inferred schema", evidence,
                      [f"dataset:{n}" for n in inferred])  # fmt: skip
    return passed(f"all {len(datasets)} dataset(s) have a declared schema", evidence,
                  [f"dataset:{d.name}" for d in datasets])  # fmt: skip


def _views_of(facts: Facts, endpoint: str) -> dict[str, list[str]]:
    """Feature view name -> the versions (``model/v``) of ``endpoint`` that read it."""
    found: dict[str, list[str]] = {}
    for version in facts.serving(endpoint):
        for view in version.lineage.get("feature_views", []):
            found.setdefault(view["name"], []).append(f"{version.name}/{version.version}")
    return found


@check(
    "data.quarantine",
    concern="lifecycle",
    severity="medium",
    title="No serving model was trained on a dataset whose quarantined share exceeds "
    "review.thresholds.quarantine_share",
    fix="`mloop data quarantine NAME` shows the rejected rows: fix the feed (or the schema), ingest again, "
    "retrain and deploy; or raise review.thresholds.quarantine_share if that share is expected",
    mlts=("monitor-2",),
)
def quarantine(facts: Facts) -> Outcome:
    limit = facts.settings.review.thresholds.quarantine_share
    definitions = _definitions(facts)
    used: dict[str, set[str]] = {}  # dataset -> the serving versions trained on it
    for endpoint in sorted(facts.live):
        for view, versions in _views_of(facts, endpoint).items():
            stored = definitions.get(("feature_view", view))
            source = stored.spec.get("source", {}) if stored else {}
            if source.get("type") == "dataset":
                used.setdefault(source["dataset"], set()).update(versions)
    if not used:
        return not_applicable("no serving model reads features from an ingested dataset")
    over, evidence = [], []
    for name in sorted(used):
        info = facts.platform.data.info(name)
        seen = info.rows + info.quarantined
        share = info.quarantined / seen if seen else 0.0
        evidence.append(f"dataset {name}: {info.quarantined} of {seen} rows quarantined ({share:.1%}), "
                        f"trained on by {', '.join(sorted(used[name]))}")  # fmt: skip
        if share > limit:
            over.append(name)
    evidence.append(f"review.thresholds.quarantine_share = {limit:.1%}")
    if over:
        models = sorted({f"model:{v}" for n in over for v in used[n]})
        return failed(f"{len(over)} dataset(s) behind serving models quarantine more than {limit:.1%}", evidence,
                      [*(f"dataset:{n}" for n in over), *models])  # fmt: skip
    return passed(f"every dataset behind a serving model quarantines at most {limit:.1%}", evidence,
                  [f"dataset:{n}" for n in sorted(used)])  # fmt: skip


@check(
    "data.freshness",
    concern="risk",
    severity="high",
    title="The online features live endpoints read are fresher than their view's TTL",
    fix="`mloop features materialize --incremental` on a schedule shorter than the TTL (or push the "
    "features); a view never materialized serves nothing online",
    mlts=("monitor-3",),
)
def freshness(facts: Facts) -> Outcome:
    readers: dict[str, set[str]] = {}
    for endpoint in sorted(facts.live):
        for view in _views_of(facts, endpoint):
            readers.setdefault(view, set()).add(endpoint)
    if not readers:
        return not_applicable("no live endpoint reads a feature view")
    definitions = _definitions(facts)
    stale, evidence = [], []
    for info in facts.platform.features.freshness(sorted(readers)):
        ttl_text = definitions[("feature_view", info.view)].spec.get("ttl")
        ttl = parse_duration(ttl_text, what="ttl") if ttl_text else None
        who = ", ".join(sorted(readers[info.view]))
        if info.watermark is None:
            stale.append(info.view)
            evidence.append(f"feature view {info.view} (read by {who}): never materialized")
            continue
        lag = facts.now - info.watermark
        evidence.append(f"feature view {info.view} (read by {who}): materialized up to {_age(lag)} ago, "
                        f"ttl {ttl_text or 'none'}")  # fmt: skip
        if ttl is not None and lag > ttl:
            stale.append(info.view)
    if stale:
        return failed(f"{len(stale)} feature view(s) behind live endpoints older than their TTL", evidence,
                      [f"feature_view:{v}" for v in stale])  # fmt: skip
    return passed(f"all {len(readers)} feature view(s) behind live endpoints within their TTL", evidence,
                  [f"feature_view:{v}" for v in sorted(readers)])  # fmt: skip


def _age(lag: timedelta) -> str:
    hours = lag.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


@check(
    "data.unused-features",
    concern="maintainability",
    severity="low",
    title="Every feature view is used by a registered model",
    fix="Delete the views no model reads (`mloop features delete NAME`), or train a model on them",
    mlts=("data-2", "data-3"),
)
def unused_features(facts: Facts) -> Outcome:
    views = sorted(name for kind, name in _definitions(facts) if kind in ("feature_view", "on_demand_view"))
    if not views:
        return not_applicable("no feature view is defined")
    used: dict[str, set[str]] = {}
    for model in facts.platform.models.list():
        for version in facts.platform.models.list_versions(model.name):
            for view in version.lineage.get("feature_views", []) + version.lineage.get("on_demand_views", []):
                used.setdefault(view["name"], set()).add(f"{model.name}/{version.version}")
    unused = [v for v in views if v not in used]
    evidence = [f"feature view {v}: used by {', '.join(sorted(used[v])[:5])}" if v in used
                else f"feature view {v}: used by no registered model version" for v in views]  # fmt: skip
    if unused:
        return failed(f"{len(unused)} of {len(views)} feature view(s) unused", evidence,
                      [f"feature_view:{v}" for v in unused])  # fmt: skip
    return passed(f"all {len(views)} feature view(s) used by a model", evidence)
