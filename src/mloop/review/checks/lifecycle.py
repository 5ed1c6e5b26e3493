"""Model lifecycle: what each live endpoint can fall back on, whether it is watched, and what its serving
versions carry from training (holdout metrics, slices, fairness, lineage, a search).

The release checks (approval, staleness, retraining, canaries) are in :mod:`.lifecycle_release`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from mloop.errors import NotFound
from mloop.registry.versions import ModelVersion
from mloop.review.facts import Facts
from mloop.review.model import Outcome, check, failed, not_applicable, passed, warned


@check(
    "lifecycle.rollback-target",
    concern="lifecycle",
    severity="high",
    title="Every live endpoint has an earlier revision, with its model versions still registered, to roll back to",
    fix="Keep the previous version registered and deploy new versions as new revisions (`mloop deploy`); "
    "`mloop rollback ENDPOINT` then restores the revision before.",
    mlts=("infra-7",),
    maturity=3,
)
def rollback_target(facts: Facts) -> Outcome:
    if not facts.live:
        return not_applicable("no endpoint is deployed")
    missing, evidence = [], []
    for endpoint, live in sorted(facts.live.items()):
        if live.previous is None:
            missing.append(endpoint)
            evidence.append(f"{endpoint}: revision {live.revision} is its first")
            continue
        target = next(d for d in facts.history(endpoint) if d.revision == live.previous)
        gone = []
        for version in target.versions:
            try:
                facts.version(target.model, version)
            except NotFound:
                gone.append(version)
        if gone:
            missing.append(endpoint)
            evidence.append(f"{endpoint}: revision {target.revision} needs {target.model} v{gone}, deleted")
        else:
            evidence.append(
                f"{endpoint}: back to revision {target.revision} ({target.model} {list(target.versions)})"
            )
    refs = [f"endpoint:{e}" for e in missing or facts.live]
    if missing:
        return failed(f"{len(missing)} of {len(facts.live)} endpoint(s) cannot roll back", evidence, refs,
                      endpoints=missing)  # fmt: skip
    return passed(f"all {len(facts.live)} endpoint(s) can roll back", evidence, refs)


@check(
    "lifecycle.monitored",
    concern="lifecycle",
    severity="high",
    title="Every live endpoint is monitored: a monitoring entry in mloop.yaml and a reference profile for "
    "each version it serves",
    fix="Add the endpoint under monitoring.endpoints in mloop.yaml; register versions through a "
    "TrainingPipeline (it profiles the training inputs), or log one with "
    "mloop.monitoring.reference.log_reference(run, X_train) and register with its lineage.",
    mlts=("monitor-2",),
    maturity=4,
)
def monitored(facts: Facts) -> Outcome:
    if not facts.live:
        return not_applicable("no endpoint is deployed")
    configured = facts.settings.monitoring.endpoints
    problems, evidence = [], []
    for endpoint in sorted(facts.live):
        if endpoint not in configured:
            problems.append(endpoint)
            evidence.append(f"{endpoint}: not under monitoring.endpoints")
        for version in facts.serving(endpoint):
            if not version.lineage.get("reference_profile"):
                problems.append(endpoint)
                evidence.append(f"{endpoint}: {version.name} v{version.version} has no reference profile")
    if problems:
        return failed(f"{len(set(problems))} endpoint(s) not fully monitored", evidence,
                      [f"endpoint:{e}" for e in sorted(set(problems))])  # fmt: skip
    return passed(f"all {len(facts.live)} endpoint(s) monitored with reference profiles",
                  [f"{e}: configured, every serving version profiled" for e in sorted(facts.live)])  # fmt: skip


# ---- what the serving versions carry ---------------------------------------------------------------------

WINDOW = timedelta(days=90)  # how far back the release checks look: long enough for a quarterly release
_PRIMARY = ("roc_auc", "auc", "pr_auc", "rmse", "mae", "accuracy", "macro_f1", "log_loss", "f1", "r2")


def serving(facts: Facts) -> list[tuple[str, ModelVersion]]:
    """Every (endpoint, version) taking a share of live traffic, endpoints in name order."""
    return facts.memo(
        "lifecycle.serving", lambda: [(e, v) for e in sorted(facts.live) for v in facts.serving(e)]
    )


def version_label(endpoint: str, version: ModelVersion) -> str:
    return f"{endpoint}: {version.name} v{version.version}"


def version_ref(version: ModelVersion) -> str:
    return f"model:{version.name}/{version.version}"


def _holdout_metric(version: ModelVersion) -> tuple[str, float] | None:
    """The version's headline metric on the test split, as the training pipeline records it."""
    tested = {k: v for k, v in version.metrics.items() if k.startswith("test_") and k != "test_rows"}
    for name in _PRIMARY:
        if isinstance(tested.get(f"test_{name}"), int | float):
            return f"test_{name}", float(tested[f"test_{name}"])
    first = next((k for k, v in sorted(tested.items()) if isinstance(v, int | float)), None)
    return (first, float(tested[first])) if first else None


def per_version(found: list[tuple[str, ModelVersion]], bad: list[str], evidence: list[str], fails: str,
                holds: str) -> Outcome:  # fmt: skip
    """Fail naming the versions in ``bad`` (``<endpoint>: <model> v<n>``), else pass: the per-version shape."""
    refs = sorted(
        {version_ref(v) for e, v in found if version_label(e, v) in bad} or {version_ref(v) for _, v in found}
    )
    if bad:
        return failed(f"{len(bad)} of {len(found)} serving version(s) {fails}", evidence, refs, versions=bad)
    return passed(f"all {len(found)} serving version(s) {holds}", evidence, refs)


@check(
    "lifecycle.holdout-gate",
    concern="lifecycle",
    severity="high",
    title="Every serving version was evaluated on a holdout before it served",
    fix="Register versions through a TrainingPipeline with a split (it records test_* metrics), or let the "
    "loop's gate judge each challenger (loop.policies in mloop.yaml; `mloop loop tick`).",
    mlts=("infra-4", "model-5"),
    maturity=3,
)
def holdout_gate(facts: Facts) -> Outcome:
    found = serving(facts)
    if not found:
        return not_applicable("no endpoint is deployed")
    gates = [e for e in facts.events("loop.gate") if e.payload.get("passed")]
    bad, evidence = [], []
    for endpoint, version in found:
        gate = next((g for g in reversed(gates) if g.resource == f"endpoint:{endpoint}"
                     and g.payload.get("challenger") == version.version), None)  # fmt: skip
        metric = _holdout_metric(version)
        if gate is not None:
            value = gate.payload.get("challenger_value")
            evidence.append(f"{version_label(endpoint, version)} passed the loop gate (event {gate.seq}): "
                            f"{gate.payload.get('metric')} {value} on {gate.payload.get('holdout_rows')} rows")  # fmt: skip
        elif metric is not None:
            rows = version.metrics.get("test_rows")
            rows = int(rows) if isinstance(rows, int | float) else "?"
            evidence.append(
                f"{version_label(endpoint, version)}: {metric[0]} {metric[1]:.4g} on {rows} holdout rows"
            )
        else:
            bad.append(version_label(endpoint, version))
            evidence.append(f"{version_label(endpoint, version)}: no test_* metric and no passed loop.gate")
    return per_version(
        found, bad, evidence, "were never evaluated on a holdout", "were evaluated on a holdout"
    )


@check(
    "lifecycle.slices",
    concern="lifecycle",
    severity="medium",
    title="Every serving version has its quality measured per data slice",
    fix="Name the columns to slice by in the pipeline: TrainingPipeline(..., slices=['country']).",
    mlts=("model-6",),
)
def slices(facts: Facts) -> Outcome:
    found = serving(facts)
    if not found:
        return not_applicable("no endpoint is deployed")
    bad, evidence = [], []
    for endpoint, version in found:
        by = version.card.get("slices") or {}  # "column=value" -> {"metrics", "rows"}
        if by:
            columns = sorted({str(key).split("=")[0] for key in by})
            evidence.append(f"{version_label(endpoint, version)}: {len(by)} slice(s) of {', '.join(columns)}")
        else:
            bad.append(version_label(endpoint, version))
            evidence.append(f"{version_label(endpoint, version)}: no slice metrics in its card")
    return per_version(found, bad, evidence, "have no slice metrics", "have metrics per slice")


@check(
    "lifecycle.fairness",
    concern="lifecycle",
    severity="medium",
    title="Every serving version is evaluated on sensitive attributes, offline or live",
    fix="Name the sensitive columns in the pipeline (TrainingPipeline(..., sensitive=['region'])) or in "
    "mloop.yaml: monitoring.endpoints.<endpoint>.performance.sensitive.",
    mlts=("model-7",),
)
def fairness(facts: Facts) -> Outcome:
    found = serving(facts)
    if not found:
        return not_applicable("no endpoint is deployed")
    bad, evidence = [], []
    for endpoint, version in found:
        gaps = [g for g in version.card.get("fairness") or [] if isinstance(g, Mapping)]  # one per metric
        offline = sorted({str(g.get("attribute")) for g in gaps})
        live = facts.settings.monitoring.endpoint(endpoint).performance.sensitive
        largest = max((float(g.get("gap") or 0.0) for g in gaps), default=None)
        if offline or live:
            gap = f" (largest gap {largest:.3f})" if largest is not None else ""
            evidence.append(
                f"{version_label(endpoint, version)}: offline {offline or 'none'}{gap}, live {live or 'none'}"
            )
        else:
            bad.append(version_label(endpoint, version))
            evidence.append(
                f"{version_label(endpoint, version)}: no fairness figures, no live sensitive columns"
            )
    return per_version(
        found,
        bad,
        evidence,
        "were never evaluated on sensitive attributes",
        "were evaluated on sensitive attributes",
    )


@check(
    "lifecycle.lineage",
    concern="lifecycle",
    severity="medium",
    title="Every serving version comes from a tracked run on a point-in-time training set from the feature "
    "store, with its code version recorded",
    fix="Train through a TrainingPipeline on feature views (it builds the training set point-in-time and "
    "records its fingerprint), in a git work tree so the run records the commit.",
    mlts=("infra-1", "monitor-3"),
    maturity=2,
)
def lineage(facts: Facts) -> Outcome:
    found = serving(facts)
    if not found:
        return not_applicable("no endpoint is deployed")
    bad, uncommitted, evidence = [], [], []
    for endpoint, version in found:
        given = version.lineage
        views = [v.get("name") for v in [*given.get("feature_views", []), *given.get("on_demand_views", [])]]
        fingerprint = given.get("training_set_fingerprint")
        missing = [what for what, ok in (("a tracked run", version.run_id), ("a training-set fingerprint",
                   fingerprint), ("feature views", views)) if not ok]  # fmt: skip
        commit = given.get("git_commit")
        if missing:
            bad.append(version_label(endpoint, version))
            evidence.append(f"{version_label(endpoint, version)}: no {', no '.join(missing)}")
            continue
        if not commit:
            uncommitted.append(version_label(endpoint, version))
        evidence.append(f"{version_label(endpoint, version)}: run {version.run_id}, training set "
                        f"{str(fingerprint)[:12]} from {', '.join(map(str, views))}, commit {commit or 'not recorded'}")  # fmt: skip
    if bad:
        return per_version(found, bad, evidence, "cannot be traced to a point-in-time training set", "")
    if uncommitted:
        return warned(f"{len(uncommitted)} serving version(s) have no code version (git commit) recorded",
                      evidence, sorted({version_ref(v) for _, v in found}), versions=uncommitted,
                      fix="Run training inside a git work tree: every run then records its commit.")  # fmt: skip
    return per_version(found, [], evidence, "", "trace to a tracked run, a training set and a commit")


@check(
    "lifecycle.tuned",
    concern="lifecycle",
    severity="low",
    title="The hyper-parameters of every serving model were searched",
    fix="Run a search on the pipeline: pipeline.tune(project, space={...}, trials=20).",
    mlts=("model-3",),
)
def tuned(facts: Facts) -> Outcome:
    models = sorted({v.name for _, v in serving(facts)})
    if not models:
        return not_applicable("no endpoint is deployed")
    bad, evidence, refs = [], [], []
    for model in models:
        runs = facts.platform.runs.search(filter=f"tags.kind = 'tune' and tags.pipeline = '{model}'", limit=1)
        if runs:
            evidence.append(f"{model}: search run {runs[0].id} ({runs[0].params.get('trials')} trials)")
            refs.append(f"run:{runs[0].id}")
        else:
            bad.append(model)
            evidence.append(f"{model}: no search run (tags.kind = tune) for this pipeline")
            refs.append(f"model:{model}")
    if bad:
        return failed(
            f"{len(bad)} of {len(models)} serving model(s) were never tuned", evidence, refs, models=bad
        )
    return passed(f"all {len(models)} serving model(s) were tuned", evidence, refs)
