"""The prediction log and feedback: the data product that monitoring and the loop read.

The inference service records every :class:`Answer` in a :class:`PredictionLog` (segments written off
the request path, compacted into Parquet by :mod:`mloop.predictions.files`); :class:`Feedback` attaches
ground-truth labels to logged requests, and :func:`labelled` joins the two.

>>> from mloop.predictions import predictions_folder, read_predictions     # doctest: +SKIP
>>> read_predictions(predictions_folder(project.settings), "fraud")         # doctest: +SKIP
"""

from mloop.predictions.answer import Answer
from mloop.predictions.feedback import Feedback, FeedbackResult, Label, LabelError, labelled, read_feedback
from mloop.predictions.files import read_predictions
from mloop.predictions.log import PredictionLog, predictions_folder

__all__ = [
    "Answer",
    "Feedback",
    "FeedbackResult",
    "Label",
    "LabelError",
    "PredictionLog",
    "labelled",
    "predictions_folder",
    "read_feedback",
    "read_predictions",
]
