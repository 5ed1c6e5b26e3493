"""The demo's simulated shoppers: they ask the ``recs`` pipeline for recommendations over HTTP, as of their
simulated time, click on what they like (the world decides), and report back whether they clicked."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import httpx
import numpy as np
import pandas as pd

from mloop.errors import MloopError
from mloop.examples.recsys.generate import World


class Shoppers:
    """Simulated users asking ``recs`` from ``url`` and clicking; their clicks are kept for the next ingest
    and their feedback (clicked or not, one label per answer) sent in batches, as a shop's event collector
    would."""

    def __init__(self, url: str, world: World) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)
        self.world = world
        self.clicks: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []
        self.feedback: list[dict[str, Any]] = []
        self.retried = 0
        self._lock = threading.Lock()

    def visit(self, user: int, day: int, at: datetime, seed: Any) -> None:
        """User ``user`` opens the shop at ``at`` (simulated day ``day``); ``seed`` draws their clicks."""
        body = {"inputs": [{"user_id": int(user)}], "at": at.isoformat()}
        sent = time.perf_counter()
        response = self.client.post("/v1/endpoints/recs/predict", json=body)
        for _ in range(5):  # an overloaded server sheds with 503 and Retry-After: a real client retries
            if response.status_code != 503:
                break
            with self._lock:
                self.retried += 1
            time.sleep(min(1.0, float(response.headers.get("retry-after", "0.2") or 0.2)))
            response = self.client.post("/v1/endpoints/recs/predict", json=body)
        seconds = time.perf_counter() - sent
        if response.status_code != 200:
            raise MloopError(f"recs answered {response.status_code}: {response.text[:300]}")
        answer = response.json()
        items = np.asarray(answer["predictions"][0]["items"], dtype="int64")
        got = self.world.respond(int(user), items, day, np.random.default_rng(seed))
        rid, stages = answer["request_id"], answer.get("stages", {})
        with self._lock:
            self.feedback.append({"request_id": rid, "label": bool(got.clicks.size)})
            self.clicks += [
                {"user_id": int(user), "item_id": int(i), "ts": at, "request_id": rid} for i in got.clicks
            ]
            self.answers.append({"day": day, "version": stages.get("retrieve", {}).get("version"),
                                 "clicked": bool(got.clicks.size), "cold": answer["predictions"][0]["cold_start"],
                                 "seconds": seconds, **{f"{k}_s": v.get("seconds") for k, v in stages.items()}})  # fmt: skip

    def report(self) -> None:
        """POST the feedback gathered since the last report."""
        with self._lock:
            sent, self.feedback = self.feedback, []
        for i in range(0, len(sent), 5_000):
            self.client.post("/v1/feedback", json={"items": sent[i : i + 5_000]}).raise_for_status()

    def take_clicks(self) -> pd.DataFrame:
        with self._lock:
            taken, self.clicks = self.clicks, []
        return pd.DataFrame(taken, columns=["user_id", "item_id", "ts", "request_id"])

    def close(self) -> None:
        self.client.close()


__all__ = ["Shoppers"]
