"""Settings: ``mloop.yaml`` in the project folder, overridden by ``MLOOP_*`` environment variables, typed
and validated once (:mod:`mloop.config.settings`); the ``monitoring:`` block's models live in
:mod:`mloop.config.monitoring`, the plain option groups in :mod:`mloop.config.sections`, the file ``mloop init``
writes in :mod:`mloop.config.template`. Components receive a :class:`Settings`; none reads the environment.

This package sits at the bottom of mloop's layers: it imports nothing of mloop's but errors and time.
"""

from mloop.config.sections import STATE_DIR, ComputeSettings
from mloop.config.settings import (
    CONFIG_FILE,
    Settings,
    existing_project_root,
    find_project_root,
    load_settings,
)
from mloop.config.template import CONFIG_TEMPLATE

__all__ = [
    "CONFIG_FILE",
    "CONFIG_TEMPLATE",
    "STATE_DIR",
    "ComputeSettings",
    "Settings",
    "existing_project_root",
    "find_project_root",
    "load_settings",
]
