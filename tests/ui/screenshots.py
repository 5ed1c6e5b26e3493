"""Screenshots of the dashboard on the demo project, for the README:
``python -m tests.ui.screenshots docs/img`` runs ``mloop demo`` in a temporary folder, serves it and
saves ``ui-overview.png`` and ``ui-loop.png`` there (needs Chromium and Playwright, as the browser tests)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.browser import chromium
from tests.serving.http.running import mloop_serve

PAGES = {"ui-overview.png": "/ui/", "ui-loop.png": "/ui/loop?endpoint=fraud"}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mloop-demo"
        mloop = Path(sys.executable).parent / "mloop"
        subprocess.run([str(mloop), "demo", "--dir", str(folder)], check=True, stdout=subprocess.DEVNULL)
        with mloop_serve(folder) as server, chromium() as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            for name, path in PAGES.items():
                page.goto(f"{server.url}{path}")
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(out / name), full_page=False)
                print(out / name)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
