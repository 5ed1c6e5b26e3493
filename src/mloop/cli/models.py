"""``mloop models``: registered models, versions, aliases, promotions with approval, history, model cards."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mloop._time import as_utc
from mloop.cli import _output as out
from mloop.cli import _state
from mloop.errors import MloopError

if TYPE_CHECKING:
    from mloop.registry.versions import ModelExport, ModelVersion, Promotion

app = typer.Typer(
    help="The model registry: versions, aliases, promotions, history, model cards.", no_args_is_help=True
)
JsonOpt = typer.Option(False, "--json", help="Print JSON for machines.")


@app.command("list")
def list_models(as_json: bool = JsonOpt) -> None:
    """Registered models with their newest version, production version and aliases.

    Example:

      $ mloop models list
    """
    models = _state.project().models.list()
    if as_json:
        out.emit_json([m.to_dict() for m in models])
        return
    out.table("Models", ["name", "latest", "versions", "production", "aliases", "created"],
              [(m.name, m.latest_version, m.versions, m.production,
                [f"{a}={v}" for a, v in m.aliases.items()], m.created_at) for m in models])  # fmt: skip


@app.command()
def show(
    name: str = typer.Argument(...),
    version: int | None = typer.Argument(None, help="A version; without it, every version is listed."),
    as_json: bool = JsonOpt,
) -> None:
    """A model's versions, or one version in detail.

    Examples:

      $ mloop models show fraud
      $ mloop models show fraud 3 --json
    """
    registry = _state.project().models
    if version is None:
        versions = registry.list_versions(name)
        if as_json:
            out.emit_json([v.to_dict() for v in versions])
            return
        out.table(f"Model {name}", ["version", "stage", "aliases", "flavour", "run", "metrics", "created", "by"],
                  [(v.version, v.stage, v.aliases, v.flavour, v.run_id, _metrics(v), v.created_at, v.created_by)
                   for v in versions])  # fmt: skip
        return
    found = registry.get(name, version)
    if as_json:
        out.emit_json(found.to_dict())
        return
    out.fields(
        f"{name} version {found.version}",
        {
            "stage": found.stage,
            "aliases": found.aliases or None,
            "flavour": f"{found.flavour} ({found.lineage.get('model', {}).get('type', '?')})",
            "artifact": f"sha256:{found.artifact}",
            "run": found.run_id,
            "git commit": found.lineage.get("git_commit"),
            "metrics": _metrics(found) or None,
            "inputs": [f"{c.name}:{c.expected()}" for c in found.signature.inputs]
            if found.signature
            else None,
            "exports": [_export(e) for e in registry.exports(name, version)] or None,
            "vector index": _index(registry.index_info(name, version))
            if registry.index_stamp(name, version)
            else None,
            "description": found.description or None,
            "created": f"{found.created_at:%Y-%m-%d %H:%M:%S} by {found.created_by}",
        },
    )


@app.command()
def card(
    name: str = typer.Argument(...), version: int = typer.Argument(...), as_json: bool = JsonOpt
) -> None:
    """The model card of a version (Markdown; redirect it to a file to keep it).

    Example:

      $ mloop models card fraud 3 > MODEL_CARD.md
    """
    registry = _state.project().models
    if as_json:
        out.emit_json(registry.card(name, version, format="json"))
        return
    text = registry.card(name, version)
    if out.console.is_terminal:
        from rich.markdown import Markdown

        out.console.print(Markdown(str(text)))
    else:
        out.console.print(str(text), markup=False, highlight=False, soft_wrap=True)


@app.command()
def export(
    ref: str = typer.Argument(..., metavar="NAME:VERSION", help="The version to convert, e.g. digits:3."),
    format: str = typer.Option("onnx", "--format", help="The format to convert to (onnx)."),
    as_json: bool = JsonOpt,
) -> None:
    """Convert a version to ONNX and store it beside the version, after checking that ONNX Runtime answers
    like the original on its example (refused, with the largest difference, otherwise).

    Example:

      $ mloop models export digits:3 --format onnx
      $ mloop deploy digits digits -v 3 --runtime onnx
    """
    name, version = _ref(ref)
    made = _state.project().models.export(name, version, format=format)
    if as_json:
        out.emit_json(made.to_dict())
        return
    parity = made.details.get("parity", {})
    out.success(
        f"{name} version {made.version} exported to {made.format} (sha256:{made.artifact[:12]}); ONNX Runtime "
        f"matches the original on {parity.get('rows', '?')} rows, largest difference {parity.get('max_abs_diff', 0):.2g}"
    )


@app.command()
def package(
    ref: str = typer.Argument(..., metavar="NAME:VERSION", help="The version to package, e.g. disease:3."),
    edge: bool = typer.Option(
        False, "--edge", help="An edge package: ONNX model + runner (numpy, onnxruntime)."
    ),
    out_path: Path = typer.Option(..., "--out", "-o", help="The archive to write, e.g. disease.tar.gz."),
    quantize: str | None = typer.Option(
        None, "--quantize", help="int8: dynamic int8 quantization, cost measured."
    ),
    preprocessing: Path | None = typer.Option(
        None, "--preprocessing", help="A JSON file of per-input mean/std (default: the version's own)."
    ),
    holdout: Path | None = typer.Option(
        None, "--holdout", help="An .npz of inputs (by input name) and 'labels' to measure int8 accuracy on."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Package a version for edge devices: its ONNX model (exported and checked if not yet), signature,
    preprocessing constants, a sha256 manifest and runner.py, which needs only numpy and onnxruntime.

    Example:

      $ mloop models package disease:3 --edge --out disease.tar.gz --quantize int8
      $ tar xzf disease.tar.gz && python disease-3/runner.py --check
      $ python disease-3/runner.py tiles.npy
    """
    if not edge:
        raise MloopError("mloop models package writes edge packages only for now: add --edge.")
    name, version = _ref(ref)
    made = _state.project().models.package_edge(
        name, version, out_path, quantize=quantize, preprocessing=preprocessing, holdout=holdout
    )
    if as_json:
        out.emit_json(made.to_dict())
        return
    parity = made.manifest["served_parity"]
    which = (
        "its int8 model answers within"
        if made.quantization
        else "its model answers like the served one, within"
    )
    out.success(
        f"{name} version {version} packaged for the edge: {made.path} ({made.path.stat().st_size / 1024:.1f} KiB); "
        f"{which} {parity['max_abs_diff']:.2g} of the served model on {parity['rows']} rows"
    )
    if made.quantization is not None:
        out.console.print(f"int8 quantization: {_cost(made.quantization)}", markup=False, highlight=False)
    out.console.print(
        f"run it: tar xzf {made.path.name} && python {made.folder}/runner.py --check",
        markup=False,
        highlight=False,
    )


@app.command()
def alias(
    name: str = typer.Argument(...),
    alias_name: str = typer.Argument(
        ..., metavar="ALIAS", help="champion, challenger, or any lowercase name."
    ),
    version: int | None = typer.Argument(None, help="The version the alias should point at."),
    delete: bool = typer.Option(False, "--delete", help="Remove the alias instead."),
) -> None:
    """Point an alias at a version (or remove it with --delete).

    Examples:

      $ mloop models alias fraud champion 3
      $ mloop models alias fraud challenger --delete
    """
    registry = _state.project().models
    if delete:
        registry.delete_alias(name, alias_name)
        out.success(f"removed alias {alias_name} of {name}")
        return
    if version is None:
        raise MloopError(
            f"Give the version {alias_name} should point at: mloop models alias {name} {alias_name} VERSION."
        )
    registry.set_alias(name, alias_name, version)
    out.success(f"{name}@{alias_name} -> version {version}")


@app.command()
def promote(
    name: str = typer.Argument(...),
    version: int = typer.Argument(...),
    to: str = typer.Option(..., "--to", help="staging, production or archived."),
    comment: str = typer.Option("", "--comment", "-m", help="Why (kept with the request)."),
) -> None:
    """Move a version to a stage; production may wait for a second person's approval.

    Example:

      $ mloop models promote fraud 3 --to production -m 'beats v2 by 0.01 AUC'
    """
    request = _state.project().models.promote(name, version, to=to, comment=comment)
    _report(request)


@app.command()
def approve(
    name: str = typer.Argument(...),
    version: int = typer.Argument(...),
    to: str = typer.Option("production", "--to"),
    comment: str = typer.Option("", "--comment", "-m"),
) -> None:
    """Approve a pending promotion (needs models.approve, and not the requester).

    Example:

      $ mloop models approve fraud 3
    """
    _report(_state.project().models.approve(name, version, to=to, comment=comment))


@app.command()
def reject(
    name: str = typer.Argument(...),
    version: int = typer.Argument(...),
    to: str = typer.Option("production", "--to"),
    comment: str = typer.Option("", "--comment", "-m"),
) -> None:
    """Reject a pending promotion; the version stays where it is.

    Example:

      $ mloop models reject fraud 3 -m 'calibration is off'
    """
    _report(_state.project().models.reject(name, version, to=to, comment=comment))


@app.command()
def pending(name: str | None = typer.Argument(None), as_json: bool = JsonOpt) -> None:
    """Promotions waiting for approval.

    Example:

      $ mloop models pending
    """
    requests = _state.project().models.promotions(name, status="pending")
    if as_json:
        out.emit_json([r.to_dict() for r in requests])
        return
    out.table("Pending promotions", ["model", "version", "to", "requested by", "at", "comment"],
              [(r.name, r.version, r.stage, r.requested_by, r.requested_at, r.comment) for r in requests])  # fmt: skip


@app.command()
def history(
    name: str = typer.Argument(...),
    at: str | None = typer.Option(None, "--at", help="A time (ISO 8601, UTC unless it says otherwise)."),
    as_json: bool = JsonOpt,
) -> None:
    """Which version held each alias and stage, from when to when; with --at, what held them then.

    Examples:

      $ mloop models history fraud
      $ mloop models history fraud --at 2026-03-01T12:00:00
    """
    registry = _state.project().models
    aliases, stages = registry.history(name), registry.stage_history(name)
    if at is not None:
        t = _parse_time(at)
        in_stage: dict[str, list[int]] = {}
        for span in stages:
            if span.holds_at(t):
                in_stage.setdefault(span.stage, []).append(span.version)
        value: dict[str, Any] = {
            "at": t.isoformat(),
            "aliases": {s.alias: s.version for s in aliases if s.holds_at(t)},
            "stages": {stage: sorted(versions) for stage, versions in in_stage.items()},
        }
        if as_json:
            out.emit_json(value)
            return
        rows = [("alias", k, v) for k, v in value["aliases"].items()]
        rows += [("stage", k, v) for k, v in value["stages"].items()]
        out.table(f"{name} at {t:%Y-%m-%d %H:%M:%S} UTC", ["kind", "name", "version"], rows)
        return
    if as_json:
        out.emit_json({"aliases": [s.to_dict() for s in aliases], "stages": [s.to_dict() for s in stages]})
        return
    out.table(f"{name}: aliases", ["alias", "version", "from", "until", "set by"],
              [(s.alias, s.version, s.start, s.end or "now", s.set_by) for s in aliases])  # fmt: skip
    out.table(f"{name}: stages", ["stage", "version", "from", "until", "set by", "approved by"],
              [(s.stage, s.version, s.start, s.end or "now", s.set_by, s.approved_by) for s in stages])  # fmt: skip


@app.command()
def delete(name: str = typer.Argument(...), version: int = typer.Argument(...)) -> None:
    """Delete a version (refused while an alias points at it or it is in production).

    Example:

      $ mloop models delete fraud 1
    """
    _state.project().models.delete_version(name, version)
    out.success(f"deleted {name} version {version}")


def _report(request: Promotion) -> None:
    if request.status == "pending":
        out.success(
            f"requested {request.name} version {request.version} -> {request.stage}; it waits for another user "
            f"holding models.approve: mloop models approve {request.name} {request.version}"
        )
    elif request.status == "rejected":
        out.success(f"rejected {request.name} version {request.version} -> {request.stage}")
    else:
        out.success(f"{request.name} version {request.version} is now in {request.stage}")


@app.command()
def index(
    ref: str = typer.Argument(
        ..., metavar="NAME:VERSION", help="The version whose index to show, e.g. two_tower:2."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """The vector index stored with a version: items, dimensions, metric, library, additions, stamp.

    Example:

      $ mloop models index two_tower:2
    """
    name, version = _ref(ref)
    info = _state.project().models.index_info(name, version)
    if as_json:
        out.emit_json(info)
        return
    out.fields(
        f"Vector index of {name} version {version}",
        {
            "items": f"{info['count']} in the base, {info['added']} added since ({info['additions']} additions)",
            "vectors": f"{info['dim']}-d, metric {info['metric']}",
            "library": info["library"],
            "source": f"{name}:{version}",
            "stamp": info["stamp"],
            "base": f"sha256:{info['artifact'][:12]} (build {info['generation']})",
            "updated": f"{info['updated_at']} by {info['updated_by']}",
        },
    )


def _ref(ref: str) -> tuple[str, int]:
    name, _, version = ref.rpartition(":")
    if not name or not version.isdigit():
        raise MloopError(f"Name the version as NAME:VERSION (for example digits:3), got {ref!r}.")
    return name, int(version)


def _index(info: dict[str, Any]) -> str:
    return (f"{info['count'] + info['added']} items ({info['added']} added), {info['dim']}-d, {info['library']}; "
            f"mloop models index {info['model']}:{info['version']}")  # fmt: skip


def _export(export: ModelExport) -> str:
    cost = export.details.get("quantization")
    return f"{export.format} (sha256:{export.artifact[:12]}" + (f"; {_cost(cost)})" if cost else ")")


def _cost(cost: dict[str, Any]) -> str:
    parts = []
    if "accuracy_change" in cost:
        parts.append(
            f"accuracy {cost['accuracy']:.4f} -> {cost['accuracy_int8']:.4f} ({cost['accuracy_change']:+.4f})"
        )
    if "rmse_change" in cost:
        parts.append(f"rmse {cost['rmse']:.4g} -> {cost['rmse_int8']:.4g} ({cost['rmse_change']:+.3g})")
    if "agreement" in cost:
        parts.append(f"same class on {cost['agreement']:.1%}")
    parts.append(f"largest change {cost['max_abs_diff']:.2g} on {cost['rows']} {cost['sample']}")
    parts.append(f"{cost['size_bytes'] / 1024:.1f} -> {cost['size_bytes_int8'] / 1024:.1f} KiB")
    return ", ".join(parts)


def _metrics(version: ModelVersion) -> str:
    flat = {k: v for k, v in version.metrics.items() if isinstance(v, int | float)}
    return ", ".join(f"{k}={out.fmt(v)}" for k, v in list(flat.items())[:4])


def _parse_time(text: str) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except ValueError:
        raise MloopError(
            f"--at {text!r} is not a time: write ISO 8601, for example 2024-03-01T12:00:00 (UTC) or "
            "2024-03-01T12:00:00+01:00."
        ) from None
