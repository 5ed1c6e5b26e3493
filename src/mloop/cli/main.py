"""The ``mloop`` command. Exit codes: 0 ok, 1 user error (with a message saying how to fix it),
2 internal error (a bug: please report it), 3 data problems found (``--strict`` ingest, validate).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from mloop import __version__
from mloop.cli import _output as out
from mloop.cli import _state
from mloop.cli import artifacts as artifacts_cli
from mloop.cli import audit as audit_cli
from mloop.cli import data as data_cli
from mloop.cli import deployments as deployments_cli
from mloop.cli import features as features_cli
from mloop.cli import loop as loop_cli
from mloop.cli import models as models_cli
from mloop.cli import monitor as monitor_cli
from mloop.cli import runs as runs_cli
from mloop.cli import score as score_cli
from mloop.cli import serve as serve_cli
from mloop.cli import users as users_cli
from mloop.errors import MloopError
from mloop.project import Project

app = typer.Typer(
    name="mloop",
    help="mloop: a closed-loop ML platform — data, features, training, registry, serving, monitoring.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_cli.app, name="data")
app.add_typer(features_cli.app, name="features")
app.add_typer(models_cli.app, name="models")
app.add_typer(users_cli.users_app, name="users")
app.add_typer(users_cli.keys_app, name="keys")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(artifacts_cli.app, name="artifacts")
app.add_typer(runs_cli.app, name="runs")
app.add_typer(deployments_cli.app, name="deployments")
app.add_typer(monitor_cli.app, name="monitor")
app.add_typer(loop_cli.app, name="loop")


@app.callback()
def _global(
    project: Path = typer.Option(
        Path("."), "--project", "-C", envvar="MLOOP_PROJECT_DIR", help="Project folder (holds mloop.yaml).",
        file_okay=False,
    ),
) -> None:  # fmt: skip
    _state.set_path(project)


@app.command()
def init(force: bool = typer.Option(False, "--force", help="Overwrite an existing mloop.yaml.")) -> None:
    """Write a commented mloop.yaml into the project folder."""
    path = Project.init(_state.path(), force=force)
    out.success(f"wrote {path}; edit it, then try: mloop data ingest FILE --dataset NAME")


@app.command()
def info(as_json: bool = typer.Option(False, "--json", help="Print JSON for machines.")) -> None:
    """Where the project keeps its state, and who you are acting as."""
    project = _state.project()
    value = {
        "project": project.name,
        "root": str(project.root),
        "actor": project.actor.name,
        "roles": [str(g) for g in project.actor.grants],
        "metadata": project.store.url,
        "artifacts": project.artifacts.url,
        "data": project.settings.data_url,
        "version": __version__,
    }
    if as_json:
        out.emit_json(value)
    else:
        out.fields(f"mloop {__version__}", value)


@app.command()
def demo(
    folder: Path = typer.Option(Path("mloop-demo"), "--dir", help="Folder for the demo project (recreated)."),
    fast: bool = typer.Option(False, "--fast", help="Smaller data, for tests."),
) -> None:
    """Run the fraud-detection case study on embedded defaults (no server to start)."""
    from mloop.examples.demo import run

    run(folder, fast=fast, console=out.console)


app.command()(serve_cli.serve)
app.command()(score_cli.score)
app.command()(deployments_cli.deploy)
app.command()(deployments_cli.rollback)
app.command()(deployments_cli.undeploy)


@app.command()
def version() -> None:
    """Print mloop's version."""
    out.console.print(__version__)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script; turns exceptions into the documented exit codes."""
    code: int | None = 0
    try:
        # Without standalone mode, a typer.Exit comes back as its code instead of a sys.exit.
        result = app(args=argv, standalone_mode=False, prog_name="mloop")
        code = result if isinstance(result, int) else 0
    except MloopError as exc:
        out.err.print("[red]error:[/red] " + _escape(str(exc)), highlight=False)
        code = 1
    except KeyboardInterrupt:
        out.err.print("interrupted")
        code = 130
    except Exception as exc:
        code = _click_exit(exc)
        if code is None:
            logging.getLogger("mloop.cli").exception("internal error")
            out.err.print(
                "[red]internal error[/red] (a bug in mloop, not in your input): the traceback is above. "
                "Please report it with the command you ran."
            )
            code = 2
    finally:
        _state.close()
    sys.exit(code)


def _click_exit(exc: Exception) -> int | None:
    """The exit code for click's own exceptions (typer vendors click, so match by shape, not by class)."""
    name = type(exc).__name__
    if name == "Exit":
        return int(getattr(exc, "exit_code", 0))
    if name == "Abort":
        out.err.print("aborted")
        return 130
    message = getattr(exc, "format_message", None)
    if callable(message) and hasattr(exc, "exit_code"):
        ctx = getattr(exc, "ctx", None)
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        out.err.print(f"[red]error:[/red] {_escape(message())}{hint}", highlight=False)
        return 1
    return None


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


if __name__ == "__main__":
    main()
