"""Concurrent keep-alive clients posting predictions to a real server, for tests that need load on it."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pandas as pd


def fraud_rows(root: Path | str, n: int = 200) -> list[dict[str, Any]]:
    """``n`` rows of the served fraud project's transactions, as predict requests carry them."""
    frame = pd.read_parquet(Path(root) / "txns.parquet", columns=["customer_id", "amount"]).head(n)
    pairs = zip(frame.customer_id, frame.amount, strict=True)
    return [{"customer_id": int(c), "amount": float(a)} for c, a in pairs]


class Clients:
    """``clients`` threads, each with its own keep-alive connection, posting one row at a time to
    ``url``'s endpoint until ``requests`` have been sent in all, or until the server stops answering.

    >>> with Clients(url, "fraud", rows, clients=6, requests=3_000) as load:   # doctest: +SKIP
    ...     load.wait_answers(1_000)
    >>> load.ids, load.statuses                                                  # doctest: +SKIP
    """

    def __init__(self, url: str, endpoint: str, rows: Sequence[dict[str, Any]], *, clients: int,
                 requests: int) -> None:  # fmt: skip
        self.url, self.path, self.rows = url, f"/v1/endpoints/{endpoint}/predict", rows
        self.ids: list[str] = []  # request ids of the 200 answers
        self.statuses: Counter[int] = Counter()
        self.errors: list[httpx.TransportError] = []  # connection errors: the server went away
        self._left = requests
        self._finished = 0  # clients that stopped
        self._changed = threading.Condition()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Clients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._left = 0
        for thread in self._threads:
            thread.join(30)

    def wait_answers(self, n: int, timeout: float = 60) -> None:
        """Return once ``n`` requests were answered with 200; fail if the clients stop short of it."""
        with self._changed:
            self._changed.wait_for(
                lambda: len(self.ids) >= n or self._finished == len(self._threads), timeout
            )
            assert len(self.ids) >= n, f"{len(self.ids)} answered of {n}: {self.statuses}, {self.errors[:3]}"

    def wait_finished(self, timeout: float = 120) -> None:
        """Return once every client has stopped (all requests sent, or the server gone)."""
        with self._changed:
            done = self._changed.wait_for(lambda: self._finished == len(self._threads), timeout)
            assert done, f"the clients did not finish within {timeout} s: {self.statuses}"

    def _client(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=30) as client:
                i = 0
                while True:
                    with self._changed:
                        if self._left <= 0:
                            return
                        self._left -= 1
                    row = self.rows[i % len(self.rows)]
                    i += 1
                    try:
                        answer = client.post(self.path, json={"rows": [row]})
                    except httpx.TransportError as exc:
                        with self._changed:
                            self.errors.append(exc)
                        return
                    with self._changed:
                        self.statuses[answer.status_code] += 1
                        if answer.status_code == 200:
                            self.ids.append(answer.json()["request_id"])
                            self._changed.notify_all()
        finally:
            with self._changed:
                self._finished += 1
                self._changed.notify_all()
