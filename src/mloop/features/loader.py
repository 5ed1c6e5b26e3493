"""Read feature definitions from a Python file (``features.py``), as ``mloop features apply`` does."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from mloop.errors import MloopError, NotFound
from mloop.features.definitions import Entity, FeatureView, OnDemandView, PushSource


def load_file(path: str | Path) -> list[Any]:
    """Every Entity, FeatureView, OnDemandView and PushSource defined at the top level of ``path``."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(
            f"No definitions file {path}: write your entities and feature views there, or pass its path."
        )
    name = f"mloop_definitions_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so inspect can find the source of on-demand functions
    try:
        spec.loader.exec_module(module)
    except MloopError:
        raise
    except Exception as exc:
        raise MloopError(
            f"{path} failed to run: {type(exc).__name__}: {exc}. Fix the file and apply again."
        ) from exc
    found = [
        v for v in vars(module).values() if isinstance(v, Entity | FeatureView | OnDemandView | PushSource)
    ]
    if not found:
        raise MloopError(
            f"{path} defines no Entity, FeatureView, OnDemandView or PushSource at its top level."
        )
    return found
