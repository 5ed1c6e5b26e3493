"""The dashboard's pages, one module each; every module has ``router(sessions) -> APIRouter`` whose paths
are relative to ``/ui``. A new page adds its module name here and its entry to :data:`mloop.ui.render.NAV`."""

from __future__ import annotations

from importlib import import_module

from fastapi import APIRouter

from mloop.ui.session import Sessions

PAGES = ("overview",)


def routers(sessions: Sessions) -> list[APIRouter]:
    return [import_module(f"mloop.ui.pages.{name}").router(sessions) for name in PAGES]
