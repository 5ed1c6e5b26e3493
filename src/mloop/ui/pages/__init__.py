"""The dashboard's pages, one module each; every module has ``router(sessions) -> APIRouter`` whose paths
are relative to ``/ui``, and its entry in :data:`mloop.ui.render.NAV`. Modules are found here, in name order."""

from __future__ import annotations

import pkgutil
from importlib import import_module

from fastapi import APIRouter

from mloop.ui.session import Sessions


def routers(sessions: Sessions) -> list[APIRouter]:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return [import_module(f"{__name__}.{name}").router(sessions) for name in names]
