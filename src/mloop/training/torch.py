"""PyTorch models as scikit-learn estimators, tracked: :class:`TorchClassifier` and :class:`TorchRegressor`.

They are skorch's ``NeuralNetClassifier`` / ``NeuralNetRegressor`` with mloop's habits: fitted inside a
run's ``with`` block (or given ``run=``), each epoch's losses and scores are logged with ``step=epoch``
and a checkpoint is stored as the run's artifact; a run reopened after a crash
(``project.runs.resume(run_id)``) continues from its last checkpoint to the same final weights; ``seed``
makes two fits bit-identical on CPU; ``early_stopping=patience`` stops when the validation loss stops
improving. ``TrainingPipeline`` and its Optuna search take them like any estimator.

>>> net = TorchClassifier(MLP, module__hidden=64, max_epochs=20, lr=1e-3, early_stopping=3, seed=0)
>>> with project.run("digits") as run:                    # doctest: +SKIP
...     net.fit(X_train, y_train)      # per-epoch train_loss, valid_loss, valid_acc; checkpoints
>>> net.predict_proba(X_test)          # the class-probability matrix, columns in net.classes_ order

``X`` is a float array ``(n, ...)``, or a DataFrame: scalar columns are stacked into ``(n, k)`` float32;
a single tensor column (an object column of per-row arrays) becomes the batch ``(n, *shape)``; several
columns with a tensor among them are passed to ``module.forward`` by name, as keyword arguments.
Classifier modules return logits (the loss is cross-entropy; ``predict_proba`` applies the softmax).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np
import pandas as pd
import torch
from skorch import NeuralNetClassifier, NeuralNetRegressor  # type: ignore[import-untyped]
from skorch.callbacks import Callback, EarlyStopping, EpochScoring, PrintLog  # type: ignore[import-untyped]
from skorch.dataset import ValidSplit  # type: ignore[import-untyped]
from skorch.utils import to_numpy  # type: ignore[import-untyped]

from mloop.errors import SchemaError
from mloop.training import checkpoints
from mloop.training.run import Run, active_run

SKIPPED = {"epoch", "batches", "dur", "train_batch_count", "valid_batch_count"}


class _Tracked:
    """What both wrappers add to skorch: input conversion, seeding, tracking, checkpoints, resume."""

    seed: int
    early_stopping: int | None
    checkpoint: bool
    resume: bool
    checkpoint_dir: str | None

    def fit(self, X: Any, y: Any = None, *, run: Run | None = None, X_valid: Any = None, y_valid: Any = None,
            **fit_params: Any) -> Any:  # fmt: skip
        """Train from scratch (or from the last unfinished checkpoint, with ``resume``); returns self.

        ``run`` defaults to the run whose ``with`` block this is in; ``X_valid``/``y_valid`` replace the
        validation split skorch would cut from ``X`` (the training pipeline passes its own)."""
        net: Any = self
        run = run if run is not None else active_run()
        where = self._store(run)
        with deterministic(self.seed):
            net.initialize()
            target = self._targets(y, fitting=True)
            net.valid_data_ = None if X_valid is None else (X_valid, self._targets(y_valid, fitting=False))
            net.run_, net.checkpoints_ = run, where
            try:
                done = self._resume_from(where)
                net.notify("on_train_begin", X=X, y=target)
                stopping = dict(net.callbacks_).get("early_stopping")
                remaining = net.max_epochs - done
                if remaining > 0 and not getattr(stopping, "stopped_", False):
                    with suppress(KeyboardInterrupt):  # skorch's way to stop early
                        net.fit_loop(X, target, epochs=remaining, **fit_params)
                net.notify("on_train_end", X=X, y=target)
            finally:
                net.valid_data_ = net.run_ = net.checkpoints_ = None  # nothing of the run is pickled
        return self

    def _store(self, run: Run | None) -> checkpoints.CheckpointStore | None:
        if not self.checkpoint:
            return None
        if self.checkpoint_dir is not None:
            return checkpoints.FolderCheckpoints(self.checkpoint_dir)
        return None if run is None else checkpoints.RunCheckpoints(run)

    def _resume_from(self, where: checkpoints.CheckpointStore | None) -> int:
        """Restore the last unfinished checkpoint; returns the epochs it had done (0 without one)."""
        net: Any = self
        data = where.load() if where is not None and self.resume else None
        if data is None:
            return 0
        state = checkpoints.read(data, where)
        if state["complete"]:
            return 0  # that training ended: this fit starts over (and replaces its checkpoint)
        checkpoints.restore(net, state, where)
        net.resumed_from_ = int(state["epoch"])
        return int(state["epoch"])

    def _targets(self, y: Any, *, fitting: bool) -> Any:
        return y

    # ---- skorch hooks -------------------------------------------------------------------------------

    def get_dataset(self, X: Any, y: Any = None) -> Any:
        return super().get_dataset(as_input(X), y)  # type: ignore[misc]

    def get_split_datasets(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        valid = getattr(self, "valid_data_", None)
        if valid is None:
            return super().get_split_datasets(X, y, **fit_params)  # type: ignore[misc]
        return self.get_dataset(X, y), self.get_dataset(*valid)

    def _yield_callbacks(self) -> Iterator[tuple[str, Any, bool]]:
        # The tracking callback comes after every scoring callback (it logs and checkpoints what they
        # recorded) and before early stopping (whose stop skips the callbacks after it); logs last.
        items = list(super()._yield_callbacks())  # type: ignore[misc]
        logs = [item for item in items if isinstance(item[1], PrintLog) or item[1] is PrintLog]
        yield from (item for item in items if item not in logs)
        yield "mloop_tracking", Tracking(), False
        if self.early_stopping is not None:
            yield "early_stopping", ResumableEarlyStopping(patience=self.early_stopping), False
        yield from logs


class TorchClassifier(_Tracked, NeuralNetClassifier):  # type: ignore[misc]
    """A torch ``nn.Module`` returning logits, as a scikit-learn classifier (skorch), tracked.

    ``classes_`` are the sorted labels seen by ``fit`` (any values: ints, strings); ``predict_proba``
    answers one column per class in that order and ``predict`` the labels; ``module_`` is the trained
    module and :meth:`probability_module` the module that answers probabilities.

    >>> TorchClassifier(MLP, module__hidden=32, max_epochs=10, batch_size=64, seed=0).fit(X, y)  # doctest: +SKIP
    """

    def __init__(self, module: Any, *, criterion: Any = torch.nn.CrossEntropyLoss,
                 optimizer: Any = torch.optim.Adam, lr: float = 1e-3, max_epochs: int = 10,
                 batch_size: int = 128, train_split: Any = ValidSplit(5, stratified=True), verbose: int = 0,
                 seed: int = 0, early_stopping: int | None = None, checkpoint: bool = True,
                 resume: bool = True, checkpoint_dir: str | None = None, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(module, criterion=criterion, optimizer=optimizer, lr=lr, max_epochs=max_epochs,
                         batch_size=batch_size, train_split=train_split, verbose=verbose, **kwargs)  # fmt: skip
        self.seed, self.early_stopping, self.checkpoint = seed, early_stopping, checkpoint
        self.resume, self.checkpoint_dir = resume, checkpoint_dir

    @property
    def _default_callbacks(self) -> list[tuple[str, Any]]:
        # skorch's valid_acc compares predict() with y; predict answers labels here, y is class indices.
        return [(name, cb) for name, cb in super()._default_callbacks if name != "valid_acc"] + [
            ("valid_acc", EpochScoring(index_accuracy, name="valid_acc", lower_is_better=False))
        ]

    def _targets(self, y: Any, *, fitting: bool) -> Any:
        if y is None:
            raise SchemaError("TorchClassifier.fit needs y, the labels (one per row of X).")
        labels = np.asarray(to_numpy(y) if isinstance(y, torch.Tensor) else y)
        if fitting:
            self.classes_inferred_ = np.unique(labels) if self.classes is None else np.asarray(self.classes)
        classes = self.classes_
        index = np.clip(np.searchsorted(classes, labels), 0, len(classes) - 1)
        unknown = classes[index] != labels
        if unknown.any():
            raise SchemaError(
                f"Label {labels[unknown][0]!r} is not one of the classes {classes.tolist()[:10]}: the "
                "validation labels must be classes seen in training (or list them all in classes=[...])."
            )
        return index.astype(np.int64)

    def check_data(self, X: Any, y: Any) -> None:
        pass  # skorch's would set classes_ from y, which is class indices by now

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row, as a label of ``classes_``."""
        return np.asarray(self.classes_)[self.predict_proba(X).argmax(axis=1)]

    def probability_module(self) -> torch.nn.Module:
        """The trained module followed by a softmax, in eval mode: what a serving flavour should export
        to answer the class-probability matrix."""
        return Softmaxed(self.module_).eval()


class TorchRegressor(_Tracked, NeuralNetRegressor):  # type: ignore[misc]
    """A torch ``nn.Module`` as a scikit-learn regressor (skorch), tracked. ``y`` of shape ``(n,)`` is
    trained as ``(n, 1)`` (the module answers one value per row) and predicted back as ``(n,)``.

    >>> TorchRegressor(MLP, module__out=1, max_epochs=20, lr=1e-2, seed=0).fit(X, y)  # doctest: +SKIP
    """

    def __init__(self, module: Any, *, criterion: Any = torch.nn.MSELoss, optimizer: Any = torch.optim.Adam,
                 lr: float = 1e-3, max_epochs: int = 10, batch_size: int = 128,
                 train_split: Any = ValidSplit(5), verbose: int = 0, seed: int = 0,
                 early_stopping: int | None = None, checkpoint: bool = True, resume: bool = True,
                 checkpoint_dir: str | None = None, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(module, criterion=criterion, optimizer=optimizer, lr=lr, max_epochs=max_epochs,
                         batch_size=batch_size, train_split=train_split, verbose=verbose, **kwargs)  # fmt: skip
        self.seed, self.early_stopping, self.checkpoint = seed, early_stopping, checkpoint
        self.resume, self.checkpoint_dir = resume, checkpoint_dir

    def _targets(self, y: Any, *, fitting: bool) -> Any:
        if y is None:
            raise SchemaError("TorchRegressor.fit needs y, the targets (one per row of X).")
        values = np.asarray(to_numpy(y) if isinstance(y, torch.Tensor) else y, dtype=np.float32)
        if fitting:
            self.target_ndim_ = values.ndim
        return values.reshape(-1, 1) if values.ndim == 1 else values

    def predict(self, X: Any) -> np.ndarray:
        values = np.asarray(super().predict(X))
        return values.reshape(-1) if getattr(self, "target_ndim_", 2) == 1 else values


class Softmaxed(torch.nn.Module):
    """A classifier module answering probabilities rather than logits."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return torch.softmax(self.module(*args, **kwargs), dim=-1)


class Tracking(Callback):  # type: ignore[misc]
    """Logs each epoch's numbers to the run (``step=epoch``) and checkpoints the net after them."""

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        row = net.history[-1]
        if net.run_ is not None:
            epoch = int(row["epoch"])
            metrics = {key: float(value) for key, value in row.items()
                       if key not in SKIPPED and not key.endswith("_best") and _number(value)}  # fmt: skip
            metrics["epoch_seconds"] = float(row.get("dur", 0.0))
            net.run_.log_metrics(metrics, step=epoch)
            net.run_.flush()  # the points before the checkpoint: a crash cannot lose what it covers
        if net.checkpoints_ is not None:
            net.checkpoints_.save(checkpoints.capture(net, complete=False))

    def on_train_end(self, net: Any, **kwargs: Any) -> None:
        if net.checkpoints_ is not None:
            net.checkpoints_.save(checkpoints.capture(net, complete=True))


class ResumableEarlyStopping(EarlyStopping):  # type: ignore[misc]
    """skorch's early stopping on the validation loss, whose count of epochs without improvement is
    replayed from the history a resumed net brings back (``stopped_`` if it had run out of patience)."""

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        super().on_train_begin(net, **kwargs)
        for row in net.history:
            score = row.get(self.monitor)
            if score is None:
                continue
            if self._is_score_improved(score):
                self.misses_, self.best_epoch_ = 0, row["epoch"]
                self.dynamic_threshold_ = self._calc_new_threshold(score)
            else:
                self.misses_ += 1
        self.stopped_ = self.misses_ >= self.patience > 0


def index_accuracy(net: Any, X: Any, y: Any) -> float:
    """Accuracy of the most probable class against ``y`` given as class indices (skorch scoring)."""
    truth = np.asarray(to_numpy(y) if isinstance(y, torch.Tensor) else y).reshape(-1)
    return float((net.predict_proba(X).argmax(axis=1) == truth).mean()) if len(truth) else float("nan")


def as_input(X: Any) -> Any:
    """A model input as skorch takes it: arrays of float32 (integers and booleans as they are), a
    DataFrame as described in the module docstring; anything else (tensors, datasets) unchanged."""
    if isinstance(X, pd.DataFrame):
        columns = {str(name): _column(X[name], str(name)) for name in X.columns}
        tensors = [name for name, values in columns.items() if values.ndim > 1]
        if not tensors:
            return np.stack(list(columns.values()), axis=1).astype(np.float32, copy=False)
        return columns[tensors[0]] if len(columns) == 1 else columns
    if isinstance(X, np.ndarray) and X.dtype.kind == "f" and X.dtype != np.float32:
        return X.astype(np.float32)
    if isinstance(X, np.ndarray) and not X.flags.writeable:  # zero-copy from Arrow: torch wants to own it
        return X.copy()
    return X


def _column(series: pd.Series, name: str) -> np.ndarray:
    if isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(series.dtype):
        cells = series.dropna()
        if len(cells) and isinstance(cells.iloc[0], np.ndarray | list | tuple):
            try:
                batch = np.stack([np.asarray(cell) for cell in series.to_numpy()])
            except ValueError as exc:
                raise SchemaError(
                    f"Tensor column {name!r} holds arrays of different shapes ({exc}); every row must "
                    "have the same shape (pad sequences to one length)."
                ) from None
            return batch.astype(np.float32) if batch.dtype.kind == "f" else batch
        raise SchemaError(
            f"Column {name!r} holds {series.dtype} values; a torch model takes numbers or tensors. Encode "
            "it as numbers first (one-hot or an embedding index), or leave it out of the features."
        )
    values = series.to_numpy()
    return values.astype(np.float32) if values.dtype.kind in "fbiu" else values


def _number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


@contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed torch, NumPy and Python's ``random`` and use torch's deterministic algorithms (warning
    where an operation has none) for the block; the previous algorithm setting comes back after."""
    import random

    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


__all__ = ["TorchClassifier", "TorchRegressor", "as_input", "deterministic"]
