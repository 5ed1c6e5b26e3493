"""Settings: ``mloop.yaml`` in the project folder, overridden by ``MLOOP_*`` environment variables, typed
and validated once (:mod:`mloop.config.settings`); the ``monitoring:`` block's models live in
:mod:`mloop.config.monitoring`. Components receive a :class:`Settings`; none reads the environment.

This package sits at the bottom of mloop's layers: it imports nothing of mloop's but errors and time.
"""

from mloop.config.settings import (
    CONFIG_FILE,
    CONFIG_TEMPLATE,
    STATE_DIR,
    ComputeSettings,
    Settings,
    existing_project_root,
    find_project_root,
    load_settings,
)

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
