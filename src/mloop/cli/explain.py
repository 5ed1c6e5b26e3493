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
    fmt: str = typer.Option("table", "--format", help="table, json or markdown."),
) -> None:  # fmt: skip
    """Why ENDPOINT answers what it does for some rows: each feature's attribution.

    The version that would answer the rows explains them, their features looked up online as for a
    prediction. Needs `predict` on the endpoint (and reads the model and the features as you).

    Examples:

      $ mloop explain fraud --row '{"customer_id": 42, "amount": 912.5}'
      $ mloop explain fraud --row '{"customer_id": 42, "amount": 912.5}' --top-k 3 --format markdown
      $ mloop explain fraud --row '{"customer_id": 7, "amount": 12}' --row '{"customer_id": 8, "amount": 40}' --format json
    """
    # The counterfactual search (`--counterfactual`) will be one more branch here, on the same rows.
    from mloop.serving.explaining import Explaining

    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r}: use {', '.join(FORMATS)}", param_hint="--format")
    rows = [_row(text, i) for i, text in enumerate(row)]
    project = _state.project()
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
