"""The HTTP layer of ``mloop serve``: the ASGI app, API-key authentication, overload protection, the
prediction fast path, error rendering and the routes (v1 JSON, Open Inference Protocol v2, features,
feedback, monitoring). Routes parse, call a service, answer; the logic lives below this package."""
