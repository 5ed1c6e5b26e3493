"""Measurements shared by training, monitoring and the loop: model quality (classification and
regression metrics, calibration, per-slice metrics, fairness gaps: :mod:`~mloop.metrics.evaluation`),
multiclass metrics (:mod:`~mloop.metrics.multiclass`), the paired bootstrap of a gain
(:mod:`~mloop.metrics.bootstrap`), the reference profile of a data set that drift is measured against
(:mod:`~mloop.metrics.profile`), the reference sample of its tensor columns
(:mod:`~mloop.metrics.reference`), ranking metrics (recall@K, NDCG@K, MRR: :mod:`~mloop.metrics.ranking`)
and the drift of embeddings and images
(:mod:`~mloop.metrics.embedding_drift`).

Pure functions over numpy arrays or pandas frames that return plain JSON; nothing here knows about runs,
versions or the prediction log.

>>> from mloop.metrics import evaluation
>>> evaluation.classification_metrics([0, 1, 1, 0], [0.1, 0.8, 0.25, 0.3])["roc_auc"]
0.75
"""
