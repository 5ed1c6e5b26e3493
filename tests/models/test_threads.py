"""Threads per model call: one by default, set before loading, checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mloop.errors import ConfigError
from mloop.models import get_flavour
from mloop.models.threads import DEFAULT, inference_threads, set_inference_threads


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    set_inference_threads(DEFAULT)


def test_one_thread_by_default_and_bad_counts_are_refused() -> None:
    assert inference_threads() == 1
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="whole number >= 1"):
            set_inference_threads(bad)  # type: ignore[arg-type]
    set_inference_threads(None)
    assert inference_threads() is None


@pytest.mark.slow
def test_loading_applies_the_count_to_both_runtimes(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from mloop.models.export import to_onnx

    flavour = get_flavour("torch")
    made, _ = flavour.prepare(torch.nn.Linear(3, 1), np.ones((2, 3), dtype=np.float32))
    flavour.save(made, tmp_path)
    set_inference_threads(2)
    flavour.load(tmp_path)
    assert torch.get_num_threads() == 2
    converted = to_onnx(flavour, made, None)
    assert converted.session.get_session_options().intra_op_num_threads == 2
    set_inference_threads(1)
    flavour.load(tmp_path)
    assert torch.get_num_threads() == 1
