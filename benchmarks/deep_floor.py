"""The floor of benchmarks/deep_serving.py: a bare FastAPI app on uvicorn that only calls the module.

No validation, no log, no metrics: the JSON body's nested list becomes a float32 tensor and goes to the
module under ``torch.inference_mode()`` with the same thread count mloop uses (one), the least a Python
server can do per request:

    python benchmarks/deep_floor.py STATE_DICT cnn|lstm PORT
    POST /predict {"inputs": [[[[...]]]]} -> {"predictions": [...]}
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, Request

from deep_models import DigitsCNN, SequenceLSTM


def app(state: str, kind: str) -> FastAPI:
    torch.set_num_threads(1)
    module = DigitsCNN() if kind == "cnn" else SequenceLSTM()
    module.load_state_dict(torch.load(state))
    module.eval()
    api = FastAPI()

    @api.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        batch = torch.from_numpy(np.asarray((await request.json())["inputs"], dtype=np.float32))
        with torch.inference_mode():
            return {"predictions": module(batch).numpy().tolist()}

    return api


if __name__ == "__main__":
    uvicorn.run(app(sys.argv[1], sys.argv[2]), host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
