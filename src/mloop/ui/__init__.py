"""The web dashboard at ``/ui``: server-rendered pages (Jinja2) with htmx for the live parts, served by
``mloop serve`` (and alone by ``mloop ui``). See docs/ui.md.

>>> from mloop.ui import mount
>>> mount(app, project)        # doctest: +SKIP
"""

from mloop.ui.app import create_ui_app, mount

__all__ = ["create_ui_app", "mount"]
