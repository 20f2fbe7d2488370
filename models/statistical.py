"""The statistical baseline: what forecasts before a model can be trained (cold start).

A new deployment, or a file as short as some of NAB's, has too little history to train
on. Persistence (the window's last value) needs none, runs through the same window stage,
alert rule and anomaly likelihood as a trained model, and its predictions say what made
them (``model_kind`` ``persistence``), so consumers can tell it from a network's.

It lives in the registry like any version (``iotml train --baseline persistence``): its
manifest says ``"kind": "persistence"`` and holds only the feature spec and alert
parameters, so :meth:`models.registry.Registry.load` builds it without TensorFlow.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from models.alerts import AlertParams
from models.features import FeatureSpec
from models.registry import Artifact, Registry

#: The model version stamped on in-memory baselines' predictions (NAB replay).
PERSISTENCE = "persistence"
#: ``model_kind`` of a trained forecaster's versions and predictions.
NETWORK = "network"

# The alert rule of a baseline with no training data, as the NAB runner tuned it: anomaly
# when the forecast error is in the far tail of the device's own recent errors, deviation
# when the window mean is far off a band each device learns online. Nothing is learned
# from a fleet, so no out_of_range limits unless forced.
LIKELIHOOD = 0.9999
LIKELIHOOD_SHORT = 2
LIKELIHOOD_RATE = 0.01
LIKELIHOOD_WARMUP = 30
DEVIATION_Z = 12.0


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
        {"kind": PERSISTENCE, "spec": spec.to_dict(), "alert_params": params.to_dict()},
        spec,
        params,
        Persistence(spec),  # type: ignore[arg-type]  # a Forecaster without TensorFlow
    )


def baseline_params(
    spec: FeatureSpec,
    cooldown_windows: int,
    silence_ms: int = 0,
    overrides: dict[str, Any] | None = None,
) -> AlertParams:
    """Alert parameters for a baseline that has seen no data (see the constants above);
    ``overrides``: forced thresholds (``None`` values are ignored)."""
    params = AlertParams(
        cooldown_ms=cooldown_windows * spec.window_ms,
        silence_ms=silence_ms,
        rule="persistence baseline: likelihood and online bands",
        anomaly_likelihood=LIKELIHOOD,
        likelihood_short=LIKELIHOOD_SHORT,
        likelihood_rate=LIKELIHOOD_RATE,
        likelihood_warmup=LIKELIHOOD_WARMUP,
        deviation_z=DEVIATION_Z,
    )
    return params.with_overrides(**(overrides or {}))


def publish_persistence(
    registry: Registry,
    name: str,
    spec: FeatureSpec,
    params: AlertParams,
    grace_ms: int = 0,
    promote: bool = True,
) -> str:
    """Publish the persistence baseline as a version of ``name``; returns the version."""
    manifest = {
        "kind": PERSISTENCE,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "spec": spec.to_dict(),
        "alert_params": params.to_dict(),
        "training": {"source": "none (statistical baseline)", "grace_ms": grace_ms},
        # its skill against persistence is 0 by definition, not measured: drift detection
        # has nothing to compare with
        "validation": {},
        "inference": PERSISTENCE,
    }
    return registry.publish(name, lambda _directory: manifest, promote=promote)


def forecaster_of(path: Path, manifest: dict[str, Any], spec: FeatureSpec) -> Any:
    """The forecaster of a registry version: :class:`Persistence` for the baseline (no
    TensorFlow), else the trained network in ``path`` (:meth:`Forecaster.load`)."""
    if manifest.get("kind") == PERSISTENCE:
        return Persistence(spec)
    from models.forecaster import Forecaster

    return Forecaster.load(path, manifest)
