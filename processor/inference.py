"""Batched inference: the model call of the window stage, timed into the metrics, and the
shadow's call beside it (not timed: the histograms describe the live model)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from models.closing import Shadow
from processor.metrics import Metrics
from processor.model import ActiveModel
from processor.shadow import layout_mismatch

log = logging.getLogger(__name__)

Predict = Callable[[np.ndarray], np.ndarray]
_ShadowCache = tuple[ActiveModel | None, ActiveModel | None, Shadow | None]  # live, shadow, stage


class Inference:
    """Gives :func:`models.close_windows` the active model's ``predict``, measuring each
    batched call (wall time and rows)."""

    def __init__(self, metrics: Metrics) -> None:
        self._seconds = metrics.inference_seconds
        self._rows = metrics.inference_rows
        self._cached: tuple[ActiveModel | None, Predict | None] = (None, None)
        self._shadow: _ShadowCache = (None, None, None)

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

    def shadow(self, live: ActiveModel, candidate: ActiveModel | None) -> Shadow | None:
        """The shadow stage of ``candidate`` beside ``live``: ``None`` while it is the live
        version itself (promoted: nothing is scored twice) or no longer fits the live
        rows (a live swap changed the horizon)."""
        cached_live, cached_candidate, stage = self._shadow
        if cached_live is live and cached_candidate is candidate:
            return stage
        stage = None
        if candidate is not None and candidate.version != live.version:
            why = layout_mismatch(live.spec, candidate.spec)
            if why is None:
                stage = Shadow(candidate.version, candidate.forecaster.predict)
            else:
                log.error("shadow %s idle beside %s: %s", candidate.version, live.version, why)
        self._shadow = (live, candidate, stage)
        return stage
