"""``mloop explain ENDPOINT --row '{...}'``: why an endpoint answers what it does for a row."""

from __future__ import annotations

import json
from typing import Any

import typer

from mloop.cli import _output as out
from mloop.cli import _state
from mloop.errors import MalformedInput

FORMATS = ("table", "json", "markdown")


def explain(
    endpoint: str = typer.Argument(..., help="The endpoint whose answer to explain."),
    row: list[str] = typer.Option(..., "--row", help="A request row as JSON: join keys and request features "
                                  "(repeat for several)."),
    top_k: int | None = typer.Option(None, "--top-k", min=1, help="Only each row's k largest attributions."),
    version: int | None = typer.Option(None, "--version", "-v", help="A version the endpoint serves (default: its "
                                       "traffic policy)."),
    target: str | None = typer.Option(None, "--target", help="The class to explain, for a multiclass model."),
    budget: int | None = typer.Option(None, "--budget", min=1, help="Model evaluations per row for a model-agnostic "
                                      "method (a flavour with no exact one)."),
    counterfactual: bool = typer.Option(False, "--counterfactual", help="Instead: the smallest changes to the "
                                        "endpoint's actionable features (explain.counterfactuals in mloop.yaml) "
                                        "that move its answer across the decision threshold; one --row."),
    k: int | None = typer.Option(None, "--k", min=1, max=20, help="With --counterfactual: answers to find "
                                 "(default: the endpoint's k)."),
    max_changes: int | None = typer.Option(None, "--max-changes", min=1, help="With --counterfactual: most "
                                           "features one answer changes."),
    fmt: str = typer.Option("table", "--format", help="table, json or markdown."),
) -> None:  # fmt: skip
    """Why ENDPOINT answers what it does for some rows: each feature's attribution.

    The version that would answer the rows explains them, their features looked up online as for a
    prediction. Needs `predict` on the endpoint (and reads the model and the features as you).

    Examples:

      $ mloop explain fraud --row '{"customer_id": 42, "amount": 912.5}'
      $ mloop explain fraud --row '{"customer_id": 42, "amount": 912.5}' --top-k 3 --format markdown
      $ mloop explain fraud --row '{"customer_id": 7, "amount": 12}' --row '{"customer_id": 8, "amount": 40}' --format json
      $ mloop explain fraud --row '{"customer_id": 42, "amount": 912.5}' --counterfactual --k 3
    """
    from mloop.serving.explaining import Explaining

    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r}: use {', '.join(FORMATS)}", param_hint="--format")
    rows = [_row(text, i) for i, text in enumerate(row)]
    project = _state.project()
    if counterfactual:
        _counterfactuals(project, endpoint, rows, version=version, k=k, max_changes=max_changes, fmt=fmt)
        return
    found = Explaining.in_process(project).explain(
        project, endpoint, rows, version=version, top_k=top_k, budget=budget,
        target=int(target) if target is not None and target.lstrip("-").isdigit() else target,
    )  # fmt: skip
    answer = found.to_dict()
    if fmt == "json":
        out.emit_json(answer)
    elif fmt == "markdown":
        out.console.print(markdown(answer), highlight=False, markup=False, soft_wrap=True)
    else:
        _tables(answer)


def _counterfactuals(project: Any, endpoint: str, rows: list[dict[str, Any]], *, version: int | None,
                     k: int | None, max_changes: int | None, fmt: str) -> None:  # fmt: skip
    from mloop.serving.counterfactuals import CounterfactualService

    found = CounterfactualService.in_process(project).counterfactuals(
        project, endpoint, rows, k=k, max_changes=max_changes, version=version
    )
    answer = found.to_dict()
    if fmt == "json":
        out.emit_json(answer)
        return
    text = counterfactual_markdown(answer)
    out.console.print(text, highlight=False, markup=False, soft_wrap=True)


def counterfactual_markdown(answer: dict[str, Any]) -> str:
    """The counterfactuals as Markdown: the row's prediction and the goal, then one line per answer."""
    side = "under" if answer["want"] == "below" else "at or over"
    lines = [f"**{answer['model']} v{answer['version']} predicts {out.fmt(answer['prediction'])}; wanted: "
             f"{side} {out.fmt(answer['threshold'])}** (actionable: "
             f"{', '.join(answer['actionable']) or 'nothing'})", ""]  # fmt: skip
    if not answer["counterfactuals"]:
        return "\n".join([*lines, f"No counterfactual: {answer.get('reason', 'none found')}"])
    lines += ["| # | changes | prediction | distance |", "|---|---|---:|---:|"]
    for i, found in enumerate(answer["counterfactuals"], 1):
        changes = "; ".join(
            f"`{n}` {out.fmt(c['from'])} → {out.fmt(c['to'])}" for n, c in found["changes"].items()
        )
        lines.append(f"| {i} | {changes} | {out.fmt(found['prediction'])} | {found['distance']:.3g} |")
    return "\n".join(lines)


def _row(text: str, i: int) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise MalformedInput(
            f"--row {i + 1} is not JSON ({exc}); write it as '{{\"customer_id\": 42}}'."
        ) from None
    if not isinstance(value, dict):
        raise MalformedInput(
            f"--row {i + 1} is a JSON {type(value).__name__}; give an object of field names to values."
        )
    return value


def _title(answer: dict[str, Any], i: int, entry: dict[str, Any]) -> str:
    return (f"Row {i + 1}: {answer['model']} v{answer['version']} predicts {out.fmt(entry['prediction'])}; "
            f"{answer['method']} in {answer['output']}: base {entry['base_value']:.4f} + attributions = "
            f"{entry['value']:.4f}")  # fmt: skip


def _tables(answer: dict[str, Any]) -> None:
    for i, entry in enumerate(answer["explanations"]):
        out.table(_title(answer, i, entry), ["feature", "attribution"],
                  [(name, value) for name, value in entry["attributions"].items()])  # fmt: skip


def markdown(answer: dict[str, Any]) -> str:
    """The answer as Markdown: per row a line saying what was predicted, then a table of attributions."""
    parts = []
    for i, entry in enumerate(answer["explanations"]):
        lines = [f"**{_title(answer, i, entry)}**", "", "| feature | attribution |", "|---|---:|"]
        lines += [f"| `{name}` | {value:+.4f} |" for name, value in entry["attributions"].items()]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
