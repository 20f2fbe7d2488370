"""Settings of ``iotml train``, ``evaluate``, ``models``, ``batch``, ``archive`` and
``retrain``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator

from iotml.core.durations import parse_duration_ms as D
from iotml.core.settings import (
    ClockSettings,
    DurationMs,
    GraceSetting,
    HttpSettings,
    KafkaSettings,
    ModelLocation,
    ServiceSettings,
    StrList,
)
from iotml.core.topics import EvaluationsTopic, ModelEventsTopic, OutputTopics, ReadingsTopic

TIME_HELP = (
    "An ISO date-time (UTC unless it has an offset), epoch ms, or an age such as 14d "
    "(now - 14 days)."
)


def parse_holdout(text: str) -> tuple[float | None, int | None]:
    """``"25%"`` -> ``(0.25, None)``; ``"2h"`` -> ``(None, 7_200_000)``."""
    text = text.strip()
    if text.endswith("%"):
        share = float(text[:-1]) / 100
        if not 0 < share < 1:
            raise ValueError(f"holdout {text!r}: a percentage must be between 0 and 100")
        return share, None
    ms = D(text)
    if ms <= 0:
        raise ValueError(f"holdout {text!r} must be positive")
    return None, ms


def _share(value: object) -> object:
    """``"2%"`` -> 0.02; anything else is left to pydantic (a plain fraction)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        return float(value.strip()[:-1]) / 100
    return value


#: A fraction given as 0.02 or as "2%".
Share = Annotated[float, BeforeValidator(_share)]


class DaskSettings(ServiceSettings):
    """Where ``iotml batch``, ``train`` and ``evaluate`` run: one process, or a Dask
    cluster."""

    engine: Literal["local", "dask"] = Field(
        "local",
        description="local: one process; dask: a Dask cluster, one task per Kafka partition "
        "of the Parquet archive (its only input). batch: the workers write date-partitioned "
        "predictions/ and alerts/ under --output and publish themselves; train: windows and "
        "features on the workers, the fit on a sample of --sample-rows here; evaluate: "
        "each partition scored on the workers, the sums added here.",
    )
    dask_scheduler: str | None = Field(
        None,
        description="A running Dask scheduler, tcp://host:port (default: a LocalCluster).",
    )
    dask_workers: int = Field(2, ge=1, description="Workers of the LocalCluster.")
    dask_memory_limit: str = Field(
        "1GiB", description="Memory limit of each LocalCluster worker, e.g. 1GiB, 512MB."
    )

    @field_validator("dask_memory_limit")
    @classmethod
    def _check_memory(cls, value: str) -> str:
        if not _BYTES.match(value):
            raise ValueError(f"{value!r} is not a size such as 1GiB, 512MB or 1000000")
        return value


_BYTES = re.compile(r"^\s*\d+(\.\d+)?\s*([kKmMgGtT]i?)?[bB]?\s*$")


class TrainSettings(KafkaSettings, ModelLocation, DaskSettings):
    """``iotml train``: fit a forecaster on recorded readings and publish a version."""

    input: str = Field(
        "",
        description="Readings to train on: a CSV file (timestamp,value or timestamp + "
        "metric columns [+ device_id]), a Parquet archive directory, kafka://<topic> "
        "(earliest to the end at start) or synthetic://devices=5,days=14[,step=1m,seed=0].",
    )
    device: str | None = Field(
        None, description="Only this device (for a CSV without device_id: its device id)."
    )
    metric: str = Field("temperature", description="Metric to forecast.")
    window: DurationMs = Field(D("30m"), description="Tumbling window length.")
    horizon: DurationMs = Field(
        D("1h"), description="Forecast horizon after the window's end (a multiple of window)."
    )
    k: int = Field(4, ge=0, le=64, description="Previous windows used as features.")
    min_count: int | None = Field(
        None,
        ge=1,
        description="Windows with fewer readings are unusable (no forecast). Default: from "
        "the data, half the median readings per window rounded up, at most 3.",
    )
    train_fraction: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Use only the first fraction of the input's time range (the rest is "
        "left for `iotml evaluate --from train-end`).",
    )
    val_fraction: float = Field(
        0.25,
        gt=0,
        lt=1,
        description="Last fraction (in time) of the training data used for validation, "
        "early stopping and learning the alert thresholds.",
    )
    epochs: int = Field(200, ge=1, description="Maximum epochs.")
    patience: int = Field(15, ge=1, description="Early stopping: epochs without improvement.")
    batch_size: int = Field(64, ge=1, description="Mini-batch size.")
    hidden: StrList = Field(
        ["32", "16"], description="Hidden layer sizes, e.g. 32,16 (empty: linear)."
    )
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")
    seed: int = Field(42, description="Random seed (same data + seed = same model).")
    threads: int = Field(2, ge=1, description="TensorFlow threads.")
    grace: DurationMs = Field(
        D("0s"),
        description="Grace period of the windows; recorded in the manifest, which the "
        "processor, evaluate and batch then follow.",
    )
    residual_z: float = Field(
        4.0,
        gt=0,
        description="Anomaly threshold in robust standard deviations of the validation residuals.",
    )
    min_duration_windows: int = Field(
        2, ge=0, description="Windows a condition must keep holding before an alert opens."
    )
    cooldown_windows: int = Field(
        24, ge=0, description="Windows after a clear before the same alert may open again."
    )
    overheat_threshold: float | None = Field(
        None, description="Force the overheat_predicted threshold (default: learned)."
    )
    residual_threshold: float | None = Field(
        None, description="Force the anomaly residual threshold (default: learned)."
    )
    low_limit: float | None = Field(None, description="Force the out_of_range low limit.")
    high_limit: float | None = Field(None, description="Force the out_of_range high limit.")
    silence: DurationMs = Field(
        D("0s"), description="device_silent after this much event time without readings (0: off)."
    )
    promote: bool = Field(True, description="Point LATEST at the new version.")
    sample_rows: int = Field(
        500_000,
        ge=20,
        description="--engine dask: fit on at most this many feature rows, a uniform sample "
        "of all (the same rows for any split of the archive).",
    )
    if_missing: bool = Field(
        False,
        description="Do nothing (exit 0) when the registry already has a LATEST version of "
        "this model name (first-run trainers, e.g. docker compose).",
    )
    baseline: Literal["persistence"] | None = Field(
        None,
        description="Publish the statistical baseline instead of training (cold start: no "
        "input needed); `iotml retrain` then trains the first network once data suffices.",
    )


class BatchSettings(
    KafkaSettings, ModelLocation, GraceSetting, ClockSettings, OutputTopics, DaskSettings
):
    """``iotml batch``: the batch view (features, forecasts, alerts) of recorded readings."""

    input: str = Field(
        "kafka://readings",
        description="kafka://<topic> (all partitions, earliest to the end at start) or a "
        "Parquet archive directory (`iotml archive`).",
    )
    model_version: str | None = Field(None, description="Model version (default: LATEST).")
    start: str | None = Field(None, description="Only readings at/after this time. " + TIME_HELP)
    end: str | None = Field(None, description="Only readings before this time.")
    output: Path = Field(
        Path("batch-view"),
        description="Directory for predictions.parquet, alerts.parquet and summary.json.",
    )
    publish: bool = Field(
        False, description="Also write the predictions and alerts to their Kafka topics."
    )
    flush: bool = Field(False, description="Close the windows still open at the end of the input.")
    retrain: bool = Field(
        False, description="First train a new version on the same readings and publish it."
    )


class ArchiveSettings(KafkaSettings, ReadingsTopic):
    """``iotml archive``: keep raw readings as date-partitioned Parquet files."""

    archive_dir: Path = Field(Path("archive"), description="Root directory of the archive.")
    consumer_group: str = Field("iotml-archive", description="Kafka consumer group.")
    roll_rows: int = Field(200_000, ge=1, description="Roll a file after this many readings.")
    roll_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Roll a file after about this many bytes."
    )
    roll_interval: DurationMs = Field(
        D("15m"), description="Roll a file after this much wall time (if it has readings)."
    )
    compression: Literal["zstd", "snappy", "gzip", "none"] = Field(
        "zstd", description="Parquet compression."
    )
    exit_at_end: bool = Field(
        False, description="Stop once every partition is archived up to its end (one-shot)."
    )


class EvaluateSettings(KafkaSettings, ModelLocation, GraceSetting, DaskSettings):
    """``iotml evaluate``: which model version to score (Kafka settings for kafka:// input)
    and where (with ``--engine dask`` the tasks replay and score the archive's partitions;
    the client adds up their sums and fits the ridge baseline)."""

    model_version: str | None = Field(None, description="Model version (default: LATEST).")
    sample_rows: int = Field(
        500_000,
        ge=2,
        description="--engine dask: fit the ridge baseline on at most this many training "
        "feature rows, a uniform sample of all (all of them below the cap: the local fit).",
    )


class RegistrySettings(ModelLocation):
    """``iotml models ...``: the registry (and, where a command takes one, the name)."""


class RetrainSettings(
    KafkaSettings, ModelLocation, GraceSetting, HttpSettings, EvaluationsTopic, ModelEventsTopic
):
    """``iotml retrain``: train a challenger on recent history and promote it only when it
    beats the champion (LATEST) on the same held-out period."""

    input: str = Field(
        "kafka://readings",
        description="Recent history: kafka://<topic> or a Parquet archive directory.",
    )
    start: str | None = Field(
        "14d", description="Train and evaluate on readings from this time on. " + TIME_HELP
    )
    end: str | None = Field(None, description="... and before this time (default: all).")
    holdout: str = Field(
        "25%",
        description="The most recent part of the data, held out to score champion and "
        "challenger: a share (25%) or a duration (2d).",
    )
    min_improvement: Share = Field(
        0.02,
        ge=0,
        lt=1,
        description="Promote only when the challenger's MAE on the held-out period is lower "
        "than the champion's by at least this share (2% or 0.02) and it opens no more "
        "alerts per device-day.",
    )
    metric: str | None = Field(
        None,
        description="Metric of the challenger (default: the champion's; another one is "
        "never promoted, as running processors cannot swap it in).",
    )
    epochs: int = Field(200, ge=1, description="Maximum epochs of the challenger.")
    patience: int = Field(15, ge=1, description="Early stopping: epochs without improvement.")
    batch_size: int = Field(64, ge=1, description="Mini-batch size.")
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")
    seed: int = Field(42, description="Random seed.")
    threads: int = Field(2, ge=1, description="TensorFlow threads.")
    every: DurationMs = Field(
        D("0s"),
        description="Keep running as a service and retrain every this much wall time "
        "(0: retrain once and exit, unless --on-drift).",
    )
    on_drift: bool = Field(
        False,
        description="Keep running as a service: detect drift on the evaluations topic, "
        "write model_degraded events to the model-events topic and retrain when one opens.",
    )
    drift_period: DurationMs = Field(
        D("10m"),
        description="Event time the live skill is computed over, and for which it must stay "
        "below (or back above) the threshold before model_degraded opens (or clears).",
    )
    drift_margin: float = Field(
        0.1,
        ge=0,
        description="model_degraded opens when the live skill stays below the version's "
        "validation skill minus this margin.",
    )
    drift_min_scored: int = Field(
        50, ge=1, description="Scored forecasts needed in the period before deciding."
    )

    @field_validator("holdout")
    @classmethod
    def _check_holdout(cls, value: str) -> str:
        parse_holdout(value)
        return value
