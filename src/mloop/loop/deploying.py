"""The loop's deployments: it moves traffic between versions, and keeps how the endpoint serves.

An endpoint's options (``timeout_ms``, batching, ``explain_sample``) are the operator's choice, made with
``mloop deploy --timeout-ms ...``; a canary step, a promotion or a rollback made by the loop carries the
live revision's options into the new one. Without this, the loop's first step dropped them: a 250 ms
timeout set by hand was gone after the next retrain (found by the slow-model chaos test, issue 25).

>>> deploy(project, "fraud", "fraud", version=3, canary=0.1)   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
from typing import Any

from mloop.deployments.revision import Deployment
from mloop.errors import NotFound
from mloop.loop.platform import Platform


def deploy(project: Platform, endpoint: str, model: str, **how: Any) -> Deployment:
    """``project.deploy(endpoint, model, **how)`` with the live revision's options, unless ``how`` has some."""
    if "options" not in how:
        with contextlib.suppress(NotFound):
            live = project.deployments.get(endpoint)
            if live.options:
                how["options"] = dict(live.options)
    return project.deploy(endpoint, model, **how)
