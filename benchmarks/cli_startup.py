"""Benchmark: how long the ``mloop`` command takes to answer when it does almost nothing.

Times, as separate processes (what a user waits for at the prompt), the median and the slowest of --repeat
runs of:

- ``mloop --help``, ``mloop data --help``, ``mloop version`` (target: under 0.3 s each);
- ``mloop data list`` outside a project (it refuses at once; it must not load the services to do so);
- the floors: ``python -c pass`` (the interpreter alone) and a one-command Typer app's ``--help`` (the CLI
  library alone), so the figure mloop adds is the difference;
- the peer, ``mlflow --help``, when MLflow is installed (benchmarks/.peers/mlflow, see tracking.py, or on
  PATH); otherwise the output says there is none.

    .venv/bin/python benchmarks/cli_startup.py
    .venv/bin/python benchmarks/cli_startup.py --repeat 21
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER = HERE / ".peers" / "mlflow" / "bin" / "mlflow"
TYPER_FLOOR = """
import typer
app = typer.Typer()
@app.command()
def hello(name: str) -> None:
    print(name)
app()
"""


def timed(argv: list[str], repeat: int, cwd: Path) -> tuple[float, float]:
    """Median and slowest wall time of ``argv``, after one warm-up run (disk cache, .pyc files)."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=120)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=120)
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=11, help="Runs per command (default 11).")
    args = parser.parse_args()
    mloop = [sys.executable, "-m", "mloop.cli.main"]
    cases = {
        "mloop --help": [*mloop, "--help"],
        "mloop data --help": [*mloop, "data", "--help"],
        "mloop version": [*mloop, "version"],
        "mloop data list (no project: refused)": [*mloop, "data", "list"],
        "floor: python -c pass": [sys.executable, "-c", "pass"],
        "floor: a Typer app's --help": [sys.executable, "-c", TYPER_FLOOR, "--help"],
    }
    peer = str(PEER) if PEER.exists() else shutil.which("mlflow")
    if peer is not None:
        cases["peer: mlflow --help"] = [peer, "--help"]
    print(
        f"CLI startup, median (slowest) of {args.repeat} runs, each a new process; {sys.version.split()[0]}"
    )
    results = {}
    with tempfile.TemporaryDirectory() as empty:
        for label, argv in cases.items():
            results[label] = timed(argv, args.repeat, Path(empty))
            median, slowest = results[label]
            print(f"  {label:<40} {median:6.3f} s  ({slowest:.3f} s)")
    help_s = results["mloop --help"][0]
    floor = results["floor: a Typer app's --help"][0]
    print(
        f"mloop --help / Typer floor: {help_s / floor:.1f}x; mloop adds {help_s - floor:.3f} s to the library"
    )
    if peer is None:
        print("peer: none installed (MLflow is not on PATH nor in benchmarks/.peers/mlflow); no peer figure.")
    else:
        print(f"mloop --help / mlflow --help: {help_s / results['peer: mlflow --help'][0]:.2f}x")


if __name__ == "__main__":
    main()
