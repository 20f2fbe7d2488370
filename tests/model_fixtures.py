"""A tiny model artifact trained in seconds on synthetic data, for tests of any package.

``train_tiny_artifact(registry_dir)`` publishes a version under
``<registry_dir>/<name>/`` (and points ``LATEST`` at it) and returns the version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iotml.core.durations import parse_duration_ms


def tiny_points(
    devices: int = 2, minutes: int = 40, interval: str = "1s", seed: int = 0
) -> list[tuple[str, int, float]]:
    """Synthetic readings (device, ts ms, value), 1 s apart by default."""
    from models.synthetic import generate

    return list(
        generate(
            devices=devices,
            duration_ms=minutes * 60_000,
            interval_ms=parse_duration_ms(interval),
            seed=seed,
        )
    )


def train_tiny_artifact(
    registry_dir: str | Path,
    name: str = "temp",
    window: str = "10s",
    horizon: str = "20s",
    k: int = 2,
    metric: str = "temperature",
    min_count: int = 3,
    epochs: int = 3,
    points: list[tuple[str, int, float]] | None = None,
    promote: bool = True,
    seed: int = 42,
    deviation: bool = False,
    **alert_overrides: Any,
) -> str:
    """Train and publish a tiny forecaster; returns its version (e.g. ``"v0001"``).

    ``alert_overrides`` force alert parameters, e.g. ``residual_threshold=1.0``,
    ``silence_ms=30_000``, ``overheat_threshold=80.0``. ``deviation`` learns the
    ``deviation`` alert too (off: the tests written before it count the other types).
    """
    from models.features import FeatureSpec
    from models.registry import Registry
    from models.thresholds import AlertRule
    from models.training import TrainConfig, train

    spec = FeatureSpec(
        metric=metric,
        window_ms=parse_duration_ms(window),
        k=k,
        horizon_ms=parse_duration_ms(horizon),
        min_count=min_count,
    )
    config = TrainConfig(
        spec=spec,
        epochs=epochs,
        patience=epochs,
        hidden=(8,),
        seed=seed,
        overrides=alert_overrides,
        rule=AlertRule(deviation=deviation),
    )
    result = train(
        points if points is not None else tiny_points(),
        config,
        Registry(registry_dir),
        name,
        source="synthetic (tests/model_fixtures.py)",
        progress=lambda _line: None,
        promote=promote,
    )
    return result.version
