"""A version's lineage graph laid out for inline SVG: one column per kind of node, left to right
(datasets → feature views → training set → run → version → deployments), edges as curves between boxes.
Layout only: the graph itself comes from ``project.models.lineage`` and ``project.deployments.serving``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mloop.deployments.revision import Deployment
from mloop.registry.lineage import KINDS, Lineage, LineageNode

COLUMNS = (*KINDS, "deployment")
TITLES = {"dataset": "Data", "feature_view": "Feature views", "training_set": "Training set", "run": "Run",
          "version": "Version", "deployment": "Deployments"}  # fmt: skip
BOX_W, BOX_H, GAP_X, GAP_Y, TOP = 150, 44, 40, 14, 28


def layout(graph: Lineage, model: str, version: int, serving: Sequence[Deployment]) -> dict[str, Any]:
    """Boxes (``x``, ``y``, ``label``, ``detail``, ``href``), edges (``d``: an SVG path) and the size."""
    nodes = list(graph.nodes)
    edges = list(graph.edges)
    for d in serving:
        share = sum(r.weight for r in d.routes if r.version == version)
        detail = f"{share:.0%} of traffic" if share else "shadow"
        nodes.append(
            LineageNode("deployment", f"endpoint:{d.endpoint}", d.endpoint, f"rev {d.revision} · {detail}")
        )
        edges.append((f"version:{version}", f"endpoint:{d.endpoint}"))
    columns = [c for c in COLUMNS if any(n.kind == c for n in nodes)]
    placed: dict[str, dict[str, Any]] = {}
    for i, kind in enumerate(columns):
        for j, node in enumerate(n for n in nodes if n.kind == kind):
            placed[node.key] = {"x": i * (BOX_W + GAP_X), "y": TOP + j * (BOX_H + GAP_Y), "label": node.label,
                                "detail": node.detail, "kind": kind, "href": _href(node, model)}  # fmt: skip
    paths = []
    for start, end in edges:
        a, b = placed.get(start), placed.get(end)
        if a is None or b is None:
            continue
        x1, y1, x2, y2 = a["x"] + BOX_W, a["y"] + BOX_H / 2, b["x"], b["y"] + BOX_H / 2
        if x2 <= x1:  # within a column (an on-demand view's input): leave the box at its bottom
            x1, y1, x2, y2 = a["x"] + BOX_W / 2, a["y"] + BOX_H, b["x"] + BOX_W / 2, b["y"]
        middle = (x1 + x2) / 2
        paths.append(f"M{x1:g},{y1:g} C{middle:g},{y1:g} {middle:g},{y2:g} {x2:g},{y2:g}")
    rows = max((sum(1 for n in nodes if n.kind == c) for c in columns), default=1)
    return {
        "boxes": list(placed.values()), "edges": paths, "box_w": BOX_W, "box_h": BOX_H,
        "titles": [(i * (BOX_W + GAP_X), TITLES[c]) for i, c in enumerate(columns)],
        "width": max(1, len(columns)) * (BOX_W + GAP_X) - GAP_X, "height": TOP + rows * (BOX_H + GAP_Y),
    }  # fmt: skip


def _href(node: LineageNode, model: str) -> str | None:
    if node.kind == "version":
        return f"/ui/models/{model}/{node.key.removeprefix('version:')}"
    if node.kind == "deployment":
        return f"/ui/deployments/{node.key.removeprefix('endpoint:')}"
    return None
