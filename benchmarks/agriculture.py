"""Benchmark: batch forecasts of the agriculture case's sequence model, ONNX Runtime against plain PyTorch.

The yield model of ``mloop demo --case agriculture`` (:class:`mloop.examples.agriculture.models.YieldNet`:
a 1-D CNN over 120 days of 13 daily features, with a padding mask) scores ``--rows`` field-days (1M by
default) in chunks of ``--chunk`` rows, the way batch scoring feeds a model, on generated sequences (a
chunk is made once and reused: the figure is the model's, not the generator's). Each side uses every core
it is given (``--threads``):

- **mloop (ONNX)**: the registered version loaded with ``runtime="onnx"`` (its ONNX export, made and
  parity-checked by the registry), called as batch scoring calls it, ``LoadedModel.predict`` on a chunk's
  DataFrame of tensor columns;
- **mloop (torch)**: the same version on its ``torch.export`` program, the same call;
- **floor (PyTorch)**: the module itself under ``torch.inference_mode()`` on the chunk's arrays: the same
  loop in plain PyTorch, no signature check, no DataFrame.

    PYTHONPATH=src .venv/bin/python benchmarks/agriculture.py [--rows 1000000] [--chunk 8192] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mloop import Project
from mloop.examples.agriculture.models import YieldNet
from mloop.models.threads import set_inference_threads

DAYS, FEATURES = 120, 13


def chunk(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sequence = rng.normal(0, 1, (rows, DAYS, FEATURES)).astype(np.float32)
    mask = np.ones((rows, DAYS), dtype=bool)
    mask[: rows // 4, : DAYS // 3] = False  # a quarter of the fields with a late sensor
    return sequence, mask


def timed(label: str, fn: object, chunks: int, rows: int) -> float:
    fn()  # type: ignore[operator]  # warm up (threads, caches)
    started = time.perf_counter()
    for _ in range(chunks):
        fn()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    rate = chunks * rows / seconds
    print(f"  {label:16} {chunks * rows:>10,} rows in {seconds:7.2f} s = {rate:>10,.0f} rows/s", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    module = YieldNet(FEATURES).eval()
    sequence, mask = chunk(args.chunk)
    chunks = max(1, args.rows // args.chunk)
    frame = pd.DataFrame({"sequence": list(sequence), "mask": list(mask)})
    with tempfile.TemporaryDirectory(prefix="mloop-agri-bench-") as tmp:
        set_inference_threads(args.threads)  # mloop's default is 1 (a server's calls share the cores)
        with Project.open(Path(tmp), env={}) as project:
            project.models.register("yield_seq", module, input_example=frame.iloc[:8])
            project.models.export("yield_seq", 1, format="onnx")
            onnx = project.models.load("yield_seq", version=1, runtime="onnx")
            program = project.models.load("yield_seq", version=1)
            with torch.inference_mode():
                want = module(torch.from_numpy(sequence[:64]), torch.from_numpy(mask[:64])).numpy().ravel()
            for loaded in (onnx, program):
                got = np.asarray(loaded.predict(frame.iloc[:64]), dtype=np.float32).ravel()
                assert np.allclose(got, want, rtol=1e-3, atol=1e-4), (got[:4], want[:4])

            def floor() -> None:
                with torch.inference_mode():
                    module(torch.from_numpy(sequence), torch.from_numpy(mask))

            print(f"YieldNet on {DAYS} days x {FEATURES} features, {args.rows:,} rows in chunks of {args.chunk:,}, "
                  f"{args.threads} thread(s), torch {torch.__version__}")  # fmt: skip
            rates = {
                "floor (PyTorch)": timed("floor (PyTorch)", floor, chunks, args.chunk),
                "mloop (ONNX)": timed("mloop (ONNX)", lambda: onnx.predict(frame), chunks, args.chunk),
                "mloop (torch)": timed("mloop (torch)", lambda: program.predict(frame), chunks, args.chunk),
            }
    base = rates["floor (PyTorch)"]
    for name, rate in rates.items():
        print(f"  {name:16} {rate / base:5.2f}x the plain PyTorch loop")


if __name__ == "__main__":
    main()
