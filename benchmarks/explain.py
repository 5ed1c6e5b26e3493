"""Benchmark: offline explanations, per flavour's method.

1. LightGBM, 100 trees x 20 features (binary), --rows rows explained offline: mloop's ``explain``
   (LightGBM's own TreeSHAP, ``pred_contrib``) against ``shap.TreeExplainer`` on the same booster (the
   peer; the values are asserted equal to 1e-6), and the floor, a bare ``booster.predict(pred_contrib=True)``;
   rows/s, medians of --repeat, and the ratio to the peer. ``booster.predict`` alone is shown for scale.
2. Captum's Integrated Gradients (50 steps, zero baseline, one torch thread) on a small CNN trained for a few epochs on
   scikit-learn's bundled digits (8x8): ms per image one image at a time (p50/p99 of --images) and in one
   batch of --images; the floor is the network's forward pass on one image.
3. The fallback (KernelSHAP) on the same LightGBM model at --budget model evaluations per row against a
   50-row background: ms per row (median of --fallback-rows rows).

    PYTHONPATH=src .venv/bin/python benchmarks/explain.py
    PYTHONPATH=src .venv/bin/python benchmarks/explain.py --rows 20000 --repeat 3

Goal (issue 26): 100k rows offline at >= shap.TreeExplainer's rows/s on the same model, same values.
Not run by CI; figures go to docs/explain.md with the command and the date.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

FEATURES, TREES = 20, 100


CPU: dict[str, float] = {}  # median CPU seconds (all threads) per label


def rounds(works: dict[str, Callable[[], Any]], repeat: int) -> tuple[dict[str, float], dict[str, Any]]:
    """The median wall seconds of ``repeat`` runs of each work and its last result. The works take turns
    (round-robin) so that a change in the machine's load during the run weighs on each alike. Their median
    CPU seconds (all threads: LightGBM uses every core, shap's TreeSHAP one) go to ``CPU``."""
    walls: dict[str, list[float]] = {k: [] for k in works}
    cpus: dict[str, list[float]] = {k: [] for k in works}
    out: dict[str, Any] = {}
    for _ in range(repeat):
        for label, work in works.items():
            cpu = time.process_time()
            started = time.perf_counter()
            out[label] = work()
            walls[label].append(time.perf_counter() - started)
            cpus[label].append(time.process_time() - cpu)
    CPU.update({k: statistics.median(v) for k, v in cpus.items()})
    return {k: statistics.median(v) for k, v in walls.items()}, out


def lightgbm_offline(rows: int, repeat: int) -> Any:
    import lightgbm as lgb
    import shap

    from mloop.explain import explain

    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(FEATURES)]
    train = pd.DataFrame(rng.normal(size=(20_000, FEATURES)), columns=names)
    label = (train.to_numpy()[:, :5].sum(axis=1) + rng.normal(size=len(train)) > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=TREES, num_leaves=31, verbose=-1).fit(train, label)
    frame = pd.DataFrame(rng.normal(size=(rows, FEATURES)), columns=names)
    booster = model.booster_

    explain("lightgbm", model, frame[:500])  # warm-up: first calls pay for LightGBM's and shap's set-up
    shap.TreeExplainer(model).shap_values(frame[:500], check_additivity=False)
    peer = shap.TreeExplainer(model)
    walls, out = rounds(
        {
            "ours": lambda: explain("lightgbm", model, frame),
            "peer": lambda: peer.shap_values(frame, check_additivity=False),
            "floor": lambda: booster.predict(frame, pred_contrib=True),
            "predict": lambda: booster.predict(frame),
        },
        repeat,
    )
    ours_s, peer_s, floor_s, predict_s = walls["ours"], walls["peer"], walls["floor"], walls["predict"]
    ours, peer_values = out["ours"], out["peer"]
    np.testing.assert_allclose(ours.values.to_numpy(), peer_values, atol=1e-6)
    np.testing.assert_allclose(ours.base_value, peer.expected_value, atol=1e-6)
    import os

    print(
        f"\n1. LightGBM {TREES} trees x {FEATURES} features, {rows:,} rows offline (median of {repeat}, in turns; {os.cpu_count()} cores)"
    )
    print(
        f"   mloop explain (pred_contrib)     {rows / ours_s:>12,.0f} rows/s   {ours_s:7.3f} s   CPU {CPU['ours']:7.2f} s"
    )
    print(
        f"   shap.TreeExplainer (peer)        {rows / peer_s:>12,.0f} rows/s   {peer_s:7.3f} s   CPU {CPU['peer']:7.2f} s"
    )
    print(
        f"   floor: booster pred_contrib      {rows / floor_s:>12,.0f} rows/s   {floor_s:7.3f} s   CPU {CPU['floor']:7.2f} s"
    )
    print(
        f"   (booster.predict, for scale      {rows / predict_s:>12,.0f} rows/s   {predict_s:7.3f} s   CPU {CPU['predict']:7.2f} s)"
    )
    print(f"   mloop / shap: {peer_s / ours_s:.2f}x the rows/s ({CPU['peer'] / CPU['ours']:.2f}x per CPU second); "
          f"mloop / floor: {floor_s / ours_s:.2f}; values equal to 1e-6")  # fmt: skip
    return model, frame


def captum_digits(images: int) -> None:
    import torch
    from sklearn.datasets import load_digits

    from mloop.explain.torch import TorchExplainer
    from mloop.models.torch import TorchFlavour

    torch.manual_seed(0)
    torch.set_num_threads(
        1
    )  # one image per call: a second thread only adds hand-offs (and, here, contention)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]  # (n, 1, 8, 8) in [0, 1]
    y = torch.from_numpy(digits.target)

    class Cnn(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
            self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
            self.out = torch.nn.Linear(32 * 4 * 4, 10)

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            hidden = torch.relu(self.conv1(image))
            hidden = torch.nn.functional.max_pool2d(torch.relu(self.conv2(hidden)), 2)
            return self.out(hidden.flatten(1))

    net = Cnn()
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    data = torch.from_numpy(x)
    for _ in range(8):
        for batch in torch.randperm(len(data)).split(64):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(net(data[batch]), y[batch]).backward()
            optimiser.step()
    net.eval()
    with torch.no_grad():
        accuracy = float((net(data).argmax(1) == y).float().mean())
    made = TorchFlavour().prepare(net, x[:8], task="classification")[0]
    test = TorchFlavour().prepare(made, x[-images:])[1]
    explainer = TorchExplainer()
    explainer.explain(made, test[:2])  # warm-up
    single = []
    for i in range(images):
        started = time.perf_counter()
        found = explainer.explain(made, test[i : i + 1])
        single.append((time.perf_counter() - started) * 1e3)
    started = time.perf_counter()
    batch = explainer.explain(made, test)
    batch_ms = (time.perf_counter() - started) * 1e3 / images
    forward = []
    with torch.no_grad():
        for i in range(images):
            started = time.perf_counter()
            net(data[i : i + 1])
            forward.append((time.perf_counter() - started) * 1e3)
    assert found.maps is not None and batch.delta is not None
    print(f"\n2. Captum IG (50 steps, zero baseline) on a digits CNN (8x8, accuracy {accuracy:.3f} on train)")
    print(f"   one image at a time   p50 {np.percentile(single, 50):6.2f} ms   p99 {np.percentile(single, 99):6.2f} ms"
          f"   ({images} images)")  # fmt: skip
    print(f"   one batch of {images:<4}     {batch_ms:6.2f} ms per image;  |delta| p50 "
          f"{np.median(batch.delta):.1e}, max {batch.delta.max():.1e} (in logits)")  # fmt: skip
    print(f"   floor: forward pass   p50 {np.percentile(forward, 50):6.2f} ms per image")


def fallback(model: Any, frame: pd.DataFrame, budget: int, rows: int) -> None:
    from mloop.explain.fallback import kernel_shap

    background = frame.iloc[-50:]
    per_row = []
    for i in range(rows):
        started = time.perf_counter()
        found = kernel_shap(
            lambda f: model.predict_proba(f)[:, 1], frame.iloc[i : i + 1], budget=budget, target=None,
            background=background, classifier=True, classes=None, why="benchmark",
        )  # fmt: skip
        per_row.append((time.perf_counter() - started) * 1e3)
    assert found.delta is not None
    print(
        f"\n3. Fallback (KernelSHAP), LightGBM {TREES} trees x {FEATURES} features, budget {budget}, 50 background rows"
    )
    print(f"   p50 {np.percentile(per_row, 50):.1f} ms per row, p99 {np.percentile(per_row, 99):.1f} ms "
          f"({rows} rows; {budget * 50:,} model rows each); max |delta| {found.delta.max():.1e}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--fallback-rows", type=int, default=20)
    args = parser.parse_args()
    model, frame = lightgbm_offline(args.rows, args.repeat)
    captum_digits(args.images)
    fallback(model, frame, args.budget, args.fallback_rows)


if __name__ == "__main__":
    main()
