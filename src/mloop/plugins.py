"""Backends chosen by name from one explicit table, and imported only when one is used.

A table maps a name to ``"module:Class"``, optionally followed by the mloop extra that installs what
the backend's module imports (the syntax of a Python entry point)::

    STORES = Plugins("online store", {
        "sqlite": "mloop.features.online.sqlite:SqliteOnlineStore",
        "redis": "mloop.features.online.redis:RedisOnlineStore [redis]",
    })
    STORES.load("redis")    # imports mloop.features.online.redis now, not when the table is built

An unknown name raises an error that lists the choices; a backend whose module imports a package that
is not installed raises :class:`~mloop.errors.BackendNotInstalled`, naming the extra to install.

This module sits below every other one: it imports nothing from mloop but :mod:`mloop.errors`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from typing import Any

from mloop.errors import BackendNotInstalled, ConfigError, MloopError

_ENTRY = re.compile(r"(?P<module>[\w.]+):(?P<attr>[\w.]+)(?:\s*\[(?P<extra>[\w-]+)\])?")

UNKNOWN = "Unknown {kind} {name!r}; choose one of {choices}."


class Plugins(dict[str, str]):
    """``name -> "module:Class [extra]"``, in order of preference; :meth:`load` imports an entry.

    ``unknown`` is the message for a name not in the table, formatted with ``kind``, ``name``,
    ``choices`` and the keyword arguments given to :meth:`load`; ``error`` is the class it raises.

    >>> EXECUTORS = Plugins("executor", {"inprocess": "mloop.training.executors:InProcessExecutor"})
    >>> EXECUTORS.load("inprocess").__name__
    'InProcessExecutor'
    >>> EXECUTORS.load("ray")
    Traceback (most recent call last):
    mloop.errors.ConfigError: Unknown executor 'ray'; choose one of inprocess.
    """

    def __init__(
        self,
        kind: str,
        entries: Mapping[str, str],
        *,
        unknown: str = UNKNOWN,
        error: type[MloopError] = ConfigError,
    ) -> None:
        super().__init__(entries)
        self.kind = kind
        self.unknown = unknown
        self.error = error

    def load(self, name: str, **context: Any) -> Any:
        """The class (or any attribute) that entry ``name`` points to, its module imported now."""
        if name not in self:
            message = self.unknown.format(kind=self.kind, name=name, choices=", ".join(self), **context)
            raise self.error(message)
        entry = _ENTRY.fullmatch(self[name].strip())
        if entry is None:
            raise ConfigError(
                f"The {self.kind} table entry {name!r} is {self[name]!r}; write it as "
                "'package.module:Class', or 'package.module:Class [extra]' when an mloop extra installs "
                "what the module imports."
            )
        try:
            found: Any = importlib.import_module(entry["module"])
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if not missing or missing.partition(".")[0] == "mloop":
                raise  # a module of mloop itself is missing: a bug, not an uninstalled extra
            raise BackendNotInstalled(self._not_installed(name, missing, entry["extra"])) from exc
        for attribute in entry["attr"].split("."):
            found = getattr(found, attribute)
        return found

    def _not_installed(self, name: str, missing: str, extra: str | None) -> str:
        wanted = f"The {self.kind} {name!r} needs the package {missing!r}, which is not installed"
        if extra:
            return f"{wanted}: pip install 'mloop[{extra}]'."
        others = [choice for choice in self if choice != name]
        instead = f", or choose another {self.kind} ({', '.join(others)})" if others else ""
        return f"{wanted}: install the package that provides it{instead}."


__all__ = ["UNKNOWN", "Plugins"]
