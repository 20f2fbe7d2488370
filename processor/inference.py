"""Batched inference: the model call of the window stage, timed into the metrics."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from processor.metrics import Metrics
from processor.model import ActiveModel

Predict = Callable[[np.ndarray], np.ndarray]


class Inference:
    """Gives :func:`models.close_windows` the active model's ``predict``, measuring each
    batched call (wall time and rows)."""

    def __init__(self, metrics: Metrics) -> None:
        self._seconds = metrics.inference_seconds
        self._rows = metrics.inference_rows
        self._cached: tuple[ActiveModel | None, Predict | None] = (None, None)

    def predictor(self, model: ActiveModel) -> Predict:
        """The timed batched ``predict`` of ``model``."""
        cached_model, fn = self._cached
        if cached_model is model and fn is not None:
            return fn
        forecaster = model.forecaster

        def predict(X: np.ndarray) -> np.ndarray:
            t0 = time.perf_counter()
            y = forecaster.predict(X)
            self._seconds.observe(time.perf_counter() - t0)
            self._rows.observe(len(X))
            return y

        self._cached = (model, predict)
        return predict
