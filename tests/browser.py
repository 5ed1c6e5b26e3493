"""A real browser for the tests: Debian's Chromium driven by Playwright (``executable_path``; no
``playwright install``). Skips without them, except under ``MLOOP_REQUIRE_SERVICES=1`` (CI), where it fails.

>>> with chromium() as browser:                       # doctest: +SKIP
...     page = browser.new_page()
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.services import unavailable


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    unavailable("Chromium is not installed (apt-get install chromium)")
    raise AssertionError("unreachable")


@contextmanager
def chromium() -> Iterator[Any]:
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed (pip install 'mloop[dev]')")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()
