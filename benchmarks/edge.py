"""Edge runner latency per tile against the served model, and what int8 quantization costs.

A disease CNN on 4-band 32x32 tiles (two 3x3 convolutions, 16 and 32 channels, a pool and a linear head),
trained for a few seconds on synthetic tiles whose diseased ones carry a dark patch in the near-infrared
band. One tile per call, one thread everywhere (mloop's serving default), median of ``--calls`` calls:

- served (torch): ``LoadedModel.predict_columns``, the call the inference engine makes per request
  (signature check, torch program), without HTTP;
- served (onnx): the same on the version's ONNX export (``runtime="onnx"``);
- edge fp32 / edge int8: the packaged runner's ``EdgeModel.predict`` on a raw tile (checks the shape,
  normalizes, runs ONNX Runtime), loaded from the unpacked archive with mloop nowhere in the call.

    PYTHONPATH=src python benchmarks/edge.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mloop import Project

BANDS, SIZE = 4, 32
MEAN, STD = [0.2, 0.3, 0.25, 0.6], [0.05, 0.08, 0.06, 0.15]


class DiseaseCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(BANDS, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
        )  # fmt: skip
        self.head = nn.Linear(32 * 16, 2)

    def forward(self, tile: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(tile).flatten(1))


def tiles(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw reflectance tiles and labels: a diseased tile has a dark patch in band 3 (near infrared)."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(MEAN, STD, (n, SIZE, SIZE, BANDS)).transpose(0, 3, 1, 2).astype(np.float32)
    sick = rng.random(n) < 0.5
    for i in np.flatnonzero(sick):
        r, c = rng.integers(0, SIZE - 10, 2)
        raw[i, 3, r : r + 10, c : c + 10] -= 0.3
    return raw, sick.astype(int)


def normalized(raw: np.ndarray) -> np.ndarray:
    mean, std = np.array(MEAN).reshape(1, -1, 1, 1), np.array(STD).reshape(1, -1, 1, 1)
    out: np.ndarray = ((raw - mean) / std).astype(np.float32)
    return out


def train(x: np.ndarray, y: np.ndarray) -> DiseaseCNN:
    torch.manual_seed(0)
    model = DiseaseCNN()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(4):
        for i in range(0, len(xt), 64):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(xt[i : i + 64]), yt[i : i + 64]).backward()
            optimiser.step()
    return model.eval()


def median_us(call: Callable[[], Any], calls: int) -> float:
    for _ in range(50):
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def edge_model(archive: Path, into: Path) -> Any:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    (folder,) = list(into.iterdir())
    spec = importlib.util.spec_from_file_location(f"edge_runner_{into.name}", folder / "runner.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EdgeModel(folder, threads=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    raw, labels = tiles(1200, 0)
    model = train(normalized(raw[:1000]), labels[:1000])
    held, held_labels = raw[1000:], labels[1000:]
    with tempfile.TemporaryDirectory(prefix="mloop-edge-bench-") as tmp:
        root = Path(tmp)
        with Project.open(root, env={}) as project:
            project.models.register(
                "disease", model, input_example=normalized(raw[:8]), task="classification",
                lineage={"preprocessing": {"tile": {"mean": MEAN, "std": STD, "axis": 0}}},
            )  # fmt: skip
            fp32 = project.models.package_edge("disease", 1, root / "disease.tar.gz")
            int8 = project.models.package_edge(
                "disease",
                1,
                root / "int8.tar.gz",
                quantize="int8",
                holdout=normalized(held),
                labels=held_labels,
            )
            served = project.models.load("disease", version=1)
            served_onnx = project.models.load("disease", version=1, runtime="onnx")
            edge32, edge8 = edge_model(fp32.path, root / "a"), edge_model(int8.path, root / "b")
            tile = raw[1100:1101]
            columns = {"tile": [normalized(tile)[0]]}
            want = served.predict_columns(columns)
            for edge in (edge32, edge8):
                assert np.allclose(edge.predict(tile), want, atol=0.05)
            sizes = (fp32.path.stat().st_size / 1024, int8.path.stat().st_size / 1024)
            figures = {
                "served (torch)": median_us(lambda: served.predict_columns(columns), args.calls),
                "served (onnx)": median_us(lambda: served_onnx.predict_columns(columns), args.calls),
                "edge fp32": median_us(lambda: edge32.predict(tile), args.calls),
                "edge int8": median_us(lambda: edge8.predict(tile), args.calls),
            }
    base = figures["served (torch)"]
    print(
        f"one 4x{SIZE}x{SIZE} tile per call, 1 thread, median of {args.calls} calls (python {sys.version.split()[0]})"
    )
    for name, us in figures.items():
        print(f"  {name:15s} {us:9.1f} us/tile   {base / us:5.2f}x the served torch model's speed")
    cost = int8.quantization or {}
    print(
        f"int8: accuracy {cost['accuracy']:.4f} -> {cost['accuracy_int8']:.4f} ({cost['accuracy_change']:+.4f}) "
        f"on {cost['rows']} held-out tiles, same class on {cost['agreement']:.1%}, largest change "
        f"{cost['max_abs_diff']:.3g}; model {cost['size_bytes'] / 1024:.1f} -> {cost['size_bytes_int8'] / 1024:.1f} KiB; "
        f"archive {sizes[0]:.1f} -> {sizes[1]:.1f} KiB"
    )


if __name__ == "__main__":
    main()
