"""The ``mloop`` command. Exit codes: 0 ok, 1 user error (with a message saying how to fix it),
2 internal error (a bug: please report it), 3 data problems found (nothing accepted, a whole column
rejected, ``--strict`` ingest, validate).

Startup matters (``mloop --help`` should answer at once), so this module and the command modules import
only typer, rich and the CLI's own helpers; each command imports the services it calls inside its body.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from mloop._version import __version__
from mloop.cli import _output as out
from mloop.cli import _state
from mloop.cli import ab as ab_cli
from mloop.cli import artifacts as artifacts_cli
from mloop.cli import audit as audit_cli
from mloop.cli import chaos as chaos_cli
from mloop.cli import cost as cost_cli
from mloop.cli import data as data_cli
from mloop.cli import decisions as decisions_cli
from mloop.cli import deployments as deployments_cli
from mloop.cli import explain as explain_cli
from mloop.cli import features as features_cli
from mloop.cli import loop as loop_cli
from mloop.cli import metrics as metrics_cli
from mloop.cli import models as models_cli
from mloop.cli import monitor as monitor_cli
from mloop.cli import privacy as privacy_cli
from mloop.cli import review as review_cli
from mloop.cli import runs as runs_cli
from mloop.cli import score as score_cli
from mloop.cli import serve as serve_cli
from mloop.cli import users as users_cli
from mloop.cli._help import Group, use_help_style
from mloop.errors import MalformedInput, MloopError

app = typer.Typer(
    name="mloop",
    help="mloop: a closed-loop ML platform — data, features, training, registry, serving, monitoring.\n\n"
    "Examples:\n\n"
    "  $ mloop init\n"
    "  $ mloop data ingest transactions.csv --dataset transactions\n"
    "  $ mloop -C ~/fraud runs list --json",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=Group,
)
for _sub, _name in (
    (data_cli.app, "data"), (features_cli.app, "features"), (models_cli.app, "models"),
    (users_cli.users_app, "users"), (users_cli.keys_app, "keys"), (audit_cli.app, "audit"),
    (artifacts_cli.app, "artifacts"), (runs_cli.app, "runs"), (deployments_cli.app, "deployments"),
    (monitor_cli.app, "monitor"), (loop_cli.app, "loop"), (privacy_cli.retention_app, "retention"),
    (decisions_cli.app, "decisions"), (ab_cli.app, "ab"), (chaos_cli.app, "chaos"),
):  # fmt: skip
    app.add_typer(_sub, name=_name, cls=Group)


def _print_version(value: bool) -> None:
    if value:
        out.console.print(__version__, highlight=False)
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    project: Path = typer.Option(
        Path("."), "--project", "-C", envvar="MLOOP_PROJECT_DIR", file_okay=False,
        help="Project folder (holds mloop.yaml); default: the current folder or the nearest parent that is one.",
    ),
    verbose: bool = typer.Option(
        False, "--verbose", help="Also log what mloop does, on stderr (JSON lines when piped), at log_level."
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print mloop's version and exit."
    ),
) -> None:  # fmt: skip
    _state.set_path(project)
    # A server's log is its output; for the other commands the result is, and log lines only with --verbose.
    _state.set_verbose(verbose or ctx.invoked_subcommand in ("serve", "ui"))


@app.command()
def init(force: bool = typer.Option(False, "--force", help="Overwrite an existing mloop.yaml.")) -> None:
    """Write a commented mloop.yaml into the project folder (-C, default the current one).

    Examples:

      $ mloop init
      $ mloop -C ~/fraud init --force
    """
    from mloop.project import Project

    path = Project.init(_state.path(), force=force)
    out.success(f"wrote {path}; edit it, then try: mloop data ingest FILE --dataset NAME")


@app.command()
def info(as_json: bool = typer.Option(False, "--json", help="Print JSON for machines.")) -> None:
    """Where the project keeps its state, and who you are acting as.

    Example:

      $ mloop info --json
    """
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
    case: str = typer.Option("fraud", "--case", help="The case study: fraud, recsys or agriculture."),
) -> None:
    """Run a case study on embedded defaults (no server to start): fraud detection (the default),
    recommendations (recsys) or precision agriculture.

    Example:

      $ mloop demo --dir mloop-demo
      $ mloop demo --case recsys --dir recs-demo
      $ mloop demo --case agriculture --dir farm-demo
    """
    if case == "fraud":
        from mloop.examples.demo import run
    elif case == "recsys":
        from mloop.examples.recsys.demo import run
    elif case == "agriculture":
        from mloop.examples.agriculture.demo import run
    else:
        raise MalformedInput(f"Unknown case {case!r}; use --case fraud, --case recsys or --case agriculture.")
    run(folder, fast=fast, console=out.console)


app.command()(serve_cli.serve)
app.command()(serve_cli.ui)
app.command()(score_cli.score)
app.command()(score_cli.geojson)
app.command()(explain_cli.explain)
app.command()(deployments_cli.deploy)
app.command()(deployments_cli.rollback)
app.command()(deployments_cli.undeploy)
app.command()(privacy_cli.forget)
app.command()(review_cli.review)
app.command()(cost_cli.cost)
app.command()(metrics_cli.metrics)


@app.command()
def version() -> None:
    """Print mloop's version (also: mloop --version).

    Example:

      $ mloop version
    """
    out.console.print(__version__, highlight=False)


use_help_style(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script; turns exceptions into the documented exit codes."""
    code: int | None = 0
    try:
        # Without standalone mode, a typer.Exit comes back as its code instead of a sys.exit.
        result = app(args=argv, standalone_mode=False, prog_name="mloop")
        code = result if isinstance(result, int) else 0
    except MloopError as exc:
        out.err.print("[red]error:[/red] " + _escape(str(exc)), highlight=False, soft_wrap=True)
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
        out.err.print(f"[red]error:[/red] {_escape(message())}{hint}", highlight=False, soft_wrap=True)
        return 1
    return None


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


if __name__ == "__main__":
    main()
