"""Features, alert rule, model artifacts and the batch path of iotml.

The stream processor uses only the names below. Everything except :class:`Forecaster`
(and :meth:`Registry.load` with ``with_model=True``) works without TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from models.alerts import AlertParams, alert_id
from models.closing import Closing, close_windows
from models.device import DeviceState, new_state
from models.errors import ArtifactNotFound, DataError, IncompatibleArtifact, ModelError
from models.features import FeatureRow, FeatureSpec, WindowStats, window_bounds
from models.partition import ModelStage, on_reading, on_time
from models.pipeline import (
    add_reading,
    advance,
    close_window,
    forget,
    make_prediction,
    observe,
    silence,
    step_alerts,
)
from models.registry import Artifact, Registry, load_path

if TYPE_CHECKING:
    from models.forecaster import Forecaster

__all__ = [
    "AlertParams",
    "Artifact",
    "ArtifactNotFound",
    "Closing",
    "DataError",
    "DeviceState",
    "FeatureRow",
    "FeatureSpec",
    "Forecaster",
    "IncompatibleArtifact",
    "ModelError",
    "ModelStage",
    "Registry",
    "WindowStats",
    "add_reading",
    "advance",
    "alert_id",
    "close_window",
    "close_windows",
    "forget",
    "load_path",
    "make_prediction",
    "new_state",
    "observe",
    "on_reading",
    "on_time",
    "silence",
    "step_alerts",
    "window_bounds",
]


def __getattr__(name: str) -> Any:
    if name == "Forecaster":  # imports TensorFlow: only on demand
        from models.forecaster import Forecaster

        return Forecaster
    raise AttributeError(f"module 'models' has no attribute {name!r}")
