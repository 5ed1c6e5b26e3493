"""The HTTP service started by ``mloop serve``: deployed model endpoints (v1 JSON and the Open Inference
Protocol), deployments and traffic policies, the feature server, metrics."""
