"""Settings of ``iotml processor`` (every ``IOTML_*`` variable it reads)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from iotml.core.durations import parse_duration_ms as D
from iotml.core.settings import (
    ClockSettings,
    DurationMs,
    EventTimeSettings,
    GraceSetting,
    HttpSettings,
    KafkaSettings,
    ModelLocation,
    data_home,
)
from iotml.core.topics import ProcessorTopics


class ProcessorSettings(
    KafkaSettings,
    EventTimeSettings,
    ClockSettings,
    HttpSettings,
    ModelLocation,
    GraceSetting,
    ProcessorTopics,
):
    """``iotml processor``: readings -> per-device windows -> forecasts and alerts."""

    consumer_group: str = Field(
        "iotml-processor",
        description="Kafka consumer group. Replicas with the same group split the "
        "partitions of the readings topic.",
    )
    processing_guarantee: Literal["at-least-once", "exactly-once"] = Field(
        "at-least-once",
        description="at-least-once: a crash may repeat outputs (same alert_id); "
        "exactly-once: outputs, state and offsets commit in one Kafka transaction.",
    )
    commit_interval: DurationMs = Field(
        D("1s"),
        description="How often offsets, state and (exactly-once) the output transaction "
        "are committed. Under exactly-once, consumers see outputs only after a commit.",
    )
    heartbeat_interval: DurationMs = Field(
        D("5s"),
        description="Wall time a partition must be idle (and fully consumed) before the "
        "processor writes a heartbeat into it, advancing its event time by the idle time "
        "so that quiet devices' windows close. 0 disables heartbeats.",
    )
    reload_interval: DurationMs = Field(
        D("10s"), description="How often the registry's LATEST pointer is checked."
    )
    state_dir: Path = Field(
        default_factory=lambda: data_home() / "processor-state",
        description="Local state directory (RocksDB); rebuilt from changelog topics if lost.",
    )
    state_cache_mb: int = Field(
        64,
        ge=1,
        description="RocksDB block cache for the device state, in MiB, shared by every "
        "partition this replica handles. Hot devices are held decoded in memory anyway, "
        "so a small cache costs little; quixstreams' own default (1 GiB) lets a long "
        "churn of device ids grow the process by that much.",
    )
    state_write_buffer_mb: int = Field(
        16,
        ge=1,
        description="RocksDB write buffer (memtable) per state partition, in MiB (up to "
        "three per partition are held in memory).",
    )
    session_timeout: DurationMs = Field(
        D("45s"),
        description="Kafka consumer session timeout: how long the group waits for a "
        "replica that stopped answering (kill -9, network loss) before its partitions "
        "move to the others.",
    )
    transaction_timeout: DurationMs = Field(
        D("60s"),
        description="exactly-once: the broker aborts a crashed replica's open transaction "
        "after this long; until then read_committed consumers (and the replica taking "
        "over its state) wait. Must exceed the commit interval.",
    )
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a new consumer group starts reading."
    )
    live_scoring: bool = Field(
        True,
        description="Score every forecast when its target window closes (the evaluations "
        "topic and the /metrics sums). Off: no evaluations, and pending forecasts keep only "
        "what the anomaly alert needs.",
    )
    shadow_version: str = Field(
        "",
        description="A candidate version of the model (e.g. v0003; newest: the newest "
        "published, followed as new ones appear) run beside the live one on the same "
        "windows: its forecasts are scored like the live ones (evaluations with role "
        "shadow, /metrics under its version) but never published as predictions or alerts. "
        "Its features, window and horizon must be the live version's. Empty: off.",
    )

    @model_validator(mode="after")
    def _check_processor(self) -> ProcessorSettings:
        if self.commit_interval <= 0:
            raise ValueError("IOTML_COMMIT_INTERVAL must be positive")
        if self.reload_interval <= 0:
            raise ValueError("IOTML_RELOAD_INTERVAL must be positive")
        if self.transaction_timeout <= self.commit_interval:
            raise ValueError("IOTML_TRANSACTION_TIMEOUT must exceed IOTML_COMMIT_INTERVAL")
        if self.shadow_version and not self.live_scoring:
            raise ValueError("IOTML_SHADOW_VERSION needs IOTML_LIVE_SCORING (it is scored only)")
        if self.shadow_version.lower() == "latest":
            raise ValueError(
                "IOTML_SHADOW_VERSION=latest is the live version itself (the processor "
                "follows LATEST): name a version, or newest for the newest published one"
            )
        return self
