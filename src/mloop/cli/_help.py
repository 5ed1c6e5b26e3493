"""How ``mloop … --help`` reads: the command and group classes every mloop command is built with.

Typer 0.29 on click 8.5 labels every option with its type, so a flag such as ``--json`` shows a ``<bool>``
value it does not take, and the usage line writes arguments as ``{file}``. These classes fix both once:
flags (``--json``, ``--help``) show no value, arguments are named in capitals as in the docs (``FILE``), and
the usage line reads ``mloop data ingest [OPTIONS] FILE``.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

# Typer carries its own copy of click (typer._click), so parameters are matched by typer's classes.


def _tidy(params: list[Any]) -> list[Any]:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # shown as the option's type: nothing, since a flag takes no value
        elif isinstance(param, TyperArgument) and param.metavar is None and param.name:
            param.metavar = param.name.upper()
    return params


def _usage(param: TyperArgument) -> str:
    name = param.metavar or (param.name or "").upper()
    if param.nargs != 1:
        name += "..."
    return name if param.required else f"[{name}]"


class Command(TyperCommand):
    """A leaf command: flags without a type label, arguments as NAME in the usage line."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _tidy(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            pieces.extend(
                [_usage(param)] if isinstance(param, TyperArgument) else param.get_usage_pieces(ctx)
            )
        return pieces


class Group(TyperGroup):
    """A command group (``mloop``, ``mloop data``, …): its own options get the same treatment."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _tidy(super().get_params(ctx))


def use_help_style(app: typer.Typer) -> None:
    """Build every command of ``app`` and of its sub-apps with :class:`Command` and :class:`Group`."""
    for command in app.registered_commands:
        if command.cls in (None, TyperCommand):
            command.cls = Command
    for group in app.registered_groups:
        if group.typer_instance is not None:
            use_help_style(group.typer_instance)
