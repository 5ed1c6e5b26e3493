"""The floor of benchmarks/serving.py: a bare FastAPI app on uvicorn that only calls the model.

It takes every one of the model's inputs in the request (no feature lookup, no validation, no logging, no
metrics) and answers the booster's prediction for one row, the least a Python server can do per request:

    python benchmarks/serving_floor.py MODEL_TXT PORT
    POST /predict {"rows": [{"f0": 0.1, ...}]} -> {"predictions": [0.02]}
"""

from __future__ import annotations

import sys
from typing import Any

import lightgbm
import numpy as np
import uvicorn
from fastapi import FastAPI, Request


def app(model_file: str) -> FastAPI:
    booster = lightgbm.Booster(model_file=model_file)
    names = booster.feature_name()
    api = FastAPI()

    @api.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        rows = (await request.json())["rows"]
        matrix = np.array([[row[n] for n in names] for row in rows], dtype=np.float64)
        return {"predictions": booster.predict(matrix, num_threads=1).tolist()}

    return api


if __name__ == "__main__":
    uvicorn.run(app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
