"""The inference service: the engine that answers predictions for deployed endpoints (the live endpoint
table, traffic routing, the predictor per model version, dynamic batching, the response cache, metrics),
its HTTP layer (:mod:`mloop.serving.http`, started by ``mloop serve``) and batch scoring
(:mod:`mloop.serving.scoring`, ``mloop score``)."""
