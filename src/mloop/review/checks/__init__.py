"""The review's checks, one module per area; every module in this package is imported by
:func:`load`, and each registers its checks with :func:`mloop.review.model.check`."""

from __future__ import annotations

import importlib
import pkgutil

from mloop.review.model import CHECKS, Check


def load() -> dict[str, Check]:
    """Every check, by id (importing the modules of this package registers them)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return CHECKS
