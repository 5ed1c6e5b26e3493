"""Batch scoring (``mloop score``): a Parquet file of rows in, the same rows with their predictions out
(:func:`score`), features looked up point in time, chunks scored in a pool of worker processes."""

from mloop.serving.scoring.job import ScoreReport, score

__all__ = ["ScoreReport", "score"]
