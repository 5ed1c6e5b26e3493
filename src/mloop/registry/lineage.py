"""Where a model version came from, as a graph: datasets → feature views → training set → run → version.

Built from what the version recorded when it was registered (its feature views *with their versions*, the
training-set fingerprint and time range, the run), so a view redefined since still shows the source it had
then: each view's source is read from the definition of the recorded version, not the newest one. What was
not recorded is left out of the graph rather than guessed. Deployments sit above the registry, so the
endpoints serving a version are added by whoever draws the graph (``project.deployments.serving``).

>>> graph = project.models.lineage("fraud", 3)              # doctest: +SKIP
>>> [n.label for n in graph.column("feature_view")]         # doctest: +SKIP
['txn_stats v2']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from mloop.registry.versions import ModelVersion
from mloop.store.schema import FeatureDefinitionRow

KINDS = ("dataset", "feature_view", "training_set", "run", "version")


@dataclass(frozen=True)
class LineageNode:
    """One box of the graph: ``kind`` is one of :data:`KINDS` (a wider graph may add its own), ``key`` is
    unique in the graph, ``label`` is what to show and ``detail`` a line under it."""

    kind: str
    key: str
    label: str
    detail: str = ""


@dataclass
class Lineage:
    nodes: list[LineageNode] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)  # (from key, to key)

    def column(self, kind: str) -> list[LineageNode]:
        return [n for n in self.nodes if n.kind == kind]

    def add(self, node: LineageNode, *, to: str | None = None, source: str | None = None) -> None:
        if all(n.key != node.key for n in self.nodes):
            self.nodes.append(node)
        if to is not None:
            self.link(node.key, to)
        if source is not None:
            self.link(source, node.key)

    def link(self, start: str, end: str) -> None:
        if (start, end) not in self.edges:
            self.edges.append((start, end))


def build(session: Session, project_id: int, version: ModelVersion) -> Lineage:
    recorded = version.lineage or {}
    graph = Lineage()
    target = f"version:{version.version}"
    graph.add(LineageNode("version", target, f"{version.name} v{version.version}", version.stage))
    run_id = recorded.get("run_id") or version.run_id
    downstream = target
    if run_id:
        found = recorded.get("run")
        run: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        detail = " · ".join(str(x) for x in (run.get("experiment"), run.get("name")) if x)
        graph.add(LineageNode("run", f"run:{run_id}", str(run_id), detail), to=target)
        downstream = f"run:{run_id}"
    fingerprint = recorded.get("training_set_fingerprint")
    if fingerprint:
        span = recorded.get("data_time_range")
        detail = (
            f"{str(span[0])[:10]} to {str(span[1])[:10]}"
            if isinstance(span, list | tuple) and len(span) == 2
            else ""
        )
        graph.add(LineageNode("training_set", "training_set", f"fingerprint {str(fingerprint)[:12]}", detail),
                  to=downstream)  # fmt: skip
        downstream = "training_set"
    views = _views(recorded)
    specs = _specs(session, project_id, views)
    for kind, name, number in views:
        key = f"{kind}:{name}"
        graph.add(
            LineageNode("feature_view", key, f"{name} v{number}", kind.replace("_", " ")), to=downstream
        )
        spec = specs.get((kind, name, number), {})
        for ref in spec.get("inputs", []) if kind == "on_demand_view" else []:
            graph.link(f"feature_view:{str(ref).split(':')[0]}", key)
        source = _source(spec.get("source"))
        if source is not None:
            graph.add(source, to=key)
    for name in _datasets(recorded.get("datasets")):
        graph.add(LineageNode("dataset", f"dataset:{name}", name, "dataset"), to=downstream)
    return graph


def _views(recorded: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    out = []
    for entry in [*(recorded.get("feature_views") or []), *(recorded.get("on_demand_views") or [])]:
        if isinstance(entry, Mapping) and entry.get("name") and isinstance(entry.get("version"), int):
            out.append((str(entry.get("kind") or "feature_view"), str(entry["name"]), int(entry["version"])))
    return list(dict.fromkeys(out))


def _specs(
    session: Session, project_id: int, views: list[tuple[str, str, int]]
) -> dict[tuple[str, str, int], dict[str, Any]]:
    if not views:
        return {}
    rows = session.execute(
        select(FeatureDefinitionRow.kind, FeatureDefinitionRow.name, FeatureDefinitionRow.version,
               FeatureDefinitionRow.spec)
        .where(FeatureDefinitionRow.project_id == project_id,
               tuple_(FeatureDefinitionRow.kind, FeatureDefinitionRow.name, FeatureDefinitionRow.version).in_(views))
    ).all()  # fmt: skip
    return {(kind, name, number): spec for kind, name, number, spec in rows}


def _source(spec: Any) -> LineageNode | None:
    if not isinstance(spec, Mapping):
        return None
    kind = spec.get("type")
    if kind == "dataset":
        return LineageNode("dataset", f"dataset:{spec['dataset']}", str(spec["dataset"]), "dataset")
    if kind == "parquet":
        paths = [str(p) for p in spec.get("path", [])]
        label = paths[0].rsplit("/", 1)[-1] if paths else "parquet"
        return LineageNode("dataset", f"parquet:{','.join(paths)}", label, "parquet files")
    if kind == "push":
        return LineageNode("dataset", f"push:{spec.get('name')}", str(spec.get("name")), "push source")
    return None


def _datasets(given: Any) -> list[str]:
    """Datasets a pipeline named itself (``lineage={"datasets": [...]}``): names or ``{name, version}``."""
    out = []
    for item in given if isinstance(given, list | tuple) else []:
        if isinstance(item, Mapping) and item.get("name"):
            out.append(
                str(item["name"]) + (f" v{item['version']}" if item.get("version") is not None else "")
            )
        elif isinstance(item, str):
            out.append(item)
    return out
