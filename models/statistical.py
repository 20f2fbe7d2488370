"""The statistical baseline: what forecasts before a model can be trained (cold start).

A new deployment, or a file as short as some of NAB's, has too little history to train
on. Persistence (the window's last value) needs none, runs through the same window stage,
alert rule and anomaly likelihood as a trained model, and its predictions say what made
them (``model_version`` ``persistence``), so consumers can tell it from a model's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.alerts import AlertParams
from models.features import FeatureSpec
from models.registry import Artifact

#: The model version stamped on the statistical baseline's predictions.
PERSISTENCE = "persistence"


class Persistence:
    """Forecasts the last value of the window just closed, for any horizon."""

    mode = "persistence"

    def __init__(self, spec: FeatureSpec) -> None:
        self._last = spec.names().index("last")

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X[:, self._last], dtype=np.float64)


def persistence_artifact(spec: FeatureSpec, params: AlertParams, name: str) -> Artifact:
    """An in-memory artifact running :class:`Persistence` (for replays and cold start)."""
    return Artifact(
        name,
        PERSISTENCE,
        Path("."),
        {"spec": spec.to_dict(), "alert_params": params.to_dict()},
        spec,
        params,
        Persistence(spec),  # type: ignore[arg-type]  # a Forecaster without TensorFlow
    )
