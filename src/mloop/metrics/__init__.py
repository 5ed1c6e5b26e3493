"""Model quality metrics shared by training, monitoring and the loop: classification and regression
metrics, calibration, per-slice metrics, fairness gaps and the paired bootstrap of a gain.

Pure functions over numpy arrays or pandas Series that return plain JSON; nothing here knows about runs,
versions or the prediction log.

>>> from mloop.metrics import evaluation
>>> evaluation.classification_metrics([0, 1, 1, 0], [0.1, 0.8, 0.25, 0.3])["roc_auc"]
0.75
"""
