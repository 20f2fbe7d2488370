"""Training a forecaster and publishing it as a registry version (imports TensorFlow)."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.preprocessing import StandardScaler

from models.alerts import AlertParams
from models.bands import BANDS_FILE
from models.errors import DataError
from models.features import FeatureSpec
from models.forecaster import MODEL_FILE, Forecaster, save_scaler, tf_threads
from models.registry import Registry, skill
from models.replay import Point
from models.thresholds import AlertRule, learn_alert_params
from models.trainset import MIN_EXAMPLES, TrainingSet, from_points


@dataclass(frozen=True)
class TrainConfig:
    spec: FeatureSpec
    epochs: int = 200
    batch_size: int = 64
    patience: int = 15
    learning_rate: float = 1e-3
    hidden: tuple[int, ...] = (32, 16)
    loss: str = "mae"  # the score we report; robust to the rare large drops
    val_fraction: float = 0.25
    seed: int = 42
    grace_ms: int = 0
    threads: int = 2
    rule: AlertRule = field(default_factory=AlertRule)
    overrides: dict[str, Any] = field(default_factory=dict)  # AlertParams fields to force


@dataclass(frozen=True)
class TrainResult:
    version: str
    metrics: dict[str, float]
    alert_params: AlertParams
    epochs_run: int
    seconds: float


def build_network(
    n_features: int, hidden: Sequence[int], learning_rate: float, loss: str = "mae"
) -> Any:
    import keras

    layers: list[Any] = [keras.Input(shape=(n_features,))]
    layers += [keras.layers.Dense(h, activation="relu") for h in hidden]
    layers.append(keras.layers.Dense(1, activation="linear"))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    return model


def train(
    points: Sequence[Point],
    config: TrainConfig,
    registry: Registry,
    name: str,
    source: str,
    progress: Callable[[str], None] = print,
    promote: bool = True,
) -> TrainResult:
    """Window the readings, fit scaler and network on the earlier part, validate on the
    later ``val_fraction`` (chronological), learn the alert thresholds from the validation
    part and publish a new version."""
    started = time.monotonic()
    data = from_points(points, config.spec, config.grace_ms)
    return fit(data, config, registry, name, source, progress, promote, started)


def fit(
    data: TrainingSet,
    config: TrainConfig,
    registry: Registry,
    name: str,
    source: str,
    progress: Callable[[str], None] = print,
    promote: bool = True,
    started: float | None = None,
    extra: dict[str, Any] | None = None,
) -> TrainResult:
    """Fit and publish a version on ``data``, computed by either engine (``extra``: more
    facts about the training data for the manifest)."""
    started = time.monotonic() if started is None else started
    spec = config.spec
    X, y, last, ends = data.X, data.y, data.last, data.ends
    if len(X) < MIN_EXAMPLES:
        raise DataError(f"only {len(X)} training examples (need {MIN_EXAMPLES})")
    cut = int(np.quantile(ends, 1.0 - config.val_fraction))
    train_idx, val_idx = ends < cut, ends >= cut
    if train_idx.sum() < MIN_EXAMPLES // 2 or val_idx.sum() < 2:
        short = "a smaller" if train_idx.sum() < MIN_EXAMPLES // 2 else "a larger"
        raise DataError(
            f"the validation split of {len(X)} examples at val_fraction {config.val_fraction} "
            f"leaves {int(train_idx.sum())} to train on (need {MIN_EXAMPLES // 2}) and "
            f"{int(val_idx.sum())} to validate (need 2). Fix: {short} --val-fraction or more data"
        )

    import keras  # only once the data is known to suffice: a short input fails fast
    import tensorflow as tf

    tf_threads(config.threads)
    scaler = StandardScaler().fit(X[train_idx].astype(np.float64))  # training part only
    mean, scale = scaler.mean_, scaler.scale_  # scale_ is 1 for constant features
    delta = y - last
    target_scale = float(np.std(delta[train_idx])) or 1.0
    Xs = ((X - mean) / scale).astype(np.float32)
    ys = (delta / target_scale).astype(np.float32)

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    model = build_network(X.shape[1], config.hidden, config.learning_rate, config.loss)
    progress(
        f"training on {int(train_idx.sum())} windows, validating on {int(val_idx.sum())} "
        f"({len(spec.names())} features, {data.devices} devices)"
    )

    class _Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            progress(
                f"epoch {epoch + 1}/{config.epochs}: loss {logs.get('loss', float('nan')):.4f} "
                f"val_loss {logs.get('val_loss', float('nan')):.4f}"
            )

    history = model.fit(
        Xs[train_idx],
        ys[train_idx],
        validation_data=(Xs[val_idx], ys[val_idx]),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True
            ),
            _Progress(),
        ],
    )
    epochs_run = len(history.history["loss"])
    forecaster = Forecaster(model, mean, scale, target_scale, spec.names().index("last"))
    val_forecast = forecaster.predict(X[val_idx])
    residual = y[val_idx] - val_forecast
    metrics = {
        "val_mae": float(np.mean(np.abs(residual))),
        "val_persistence_mae": float(np.mean(np.abs(y[val_idx] - last[val_idx]))),
        "val_n": int(val_idx.sum()),
        "train_n": int(train_idx.sum()),
    }
    val_skill = skill(metrics["val_mae"], metrics["val_persistence_mae"])
    if val_skill is not None:
        metrics["val_skill"] = val_skill  # what drift detection compares the live skill to
    bands = data.bands
    params = learn_alert_params(
        data.values, residual, val_forecast, spec, config.rule, config.overrides, bands
    )

    manifest = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "spec": spec.to_dict(),
        "alert_params": params.to_dict(),
        "alert_rule": config.rule.to_dict(),
        "target": {"kind": "last_value_at_horizon", "delta_scale": target_scale},
        "training": {
            "source": source,
            **data.manifest(),
            **(extra or {}),
            "validation_from_ts": cut,
            "epochs_run": epochs_run,
            "seed": config.seed,
            "hidden": list(config.hidden),
            "grace_ms": config.grace_ms,
        },
        "validation": metrics,
        "libraries": _library_versions(),
        "inference": forecaster.mode,
        "bands": None
        if bands is None
        else {"devices": len(bands.devices), "z": bands.z, "fleet": bands.fleet.to_list()},
    }

    def build(directory: Path) -> dict[str, Any]:
        model.save(directory / MODEL_FILE)
        save_scaler(directory, mean, scale, target_scale)
        forecaster.save_dense(directory)  # the processor then runs without TensorFlow
        if bands is not None:  # one entry per device: a file of its own, not the manifest
            (directory / BANDS_FILE).write_text(json.dumps(bands.to_dict()), encoding="utf-8")
        return manifest

    version = registry.publish(name, build, promote=promote)
    seconds = time.monotonic() - started
    return TrainResult(version, metrics, params, epochs_run, seconds)


def _library_versions() -> dict[str, str]:
    import keras
    import sklearn
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }
