"""Settings of ``iotml bridge`` and ``iotml simulate`` (every ``IOTML_*`` variable they read)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from bridge.routes import DEFAULT_ROUTE, parse_route
from iotml.core.deadletters import DEFAULT_MAX_BYTES
from iotml.core.durations import parse_duration_ms as D
from iotml.core.settings import (
    DurationMs,
    EventTimeSettings,
    HttpSettings,
    KafkaSettings,
    MqttSettings,
    StrList,
)
from iotml.core.topics import BridgeTopics


class BridgeSettings(KafkaSettings, EventTimeSettings, MqttSettings, HttpSettings, BridgeTopics):
    """``iotml bridge``: MQTT topics into Kafka, acknowledged only once Kafka has them."""

    routes: StrList = Field(
        [DEFAULT_ROUTE],
        description="Routes, tried in order: pattern[=kafka_topic[:key_template]], e.g. "
        "'sensors/{site}/{device}/{metric}=readings:{device}'. {name} captures one topic "
        "level (usable in the Kafka topic and the key), + matches one level, a final # the "
        "rest. The Kafka topic defaults to IOTML_TOPIC_READINGS, the key to {device} (or the "
        "payload's device_id). Several routes: comma-separated, or the flag repeated.",
    )
    mqtt_subscribe: StrList = Field(
        [],
        description="MQTT filters to subscribe to instead of each route's own pattern. A "
        "broader filter (e.g. sensors/#) also brings messages that match no route, which "
        "are then dead-lettered (no_route) instead of never being seen. Avoid overlapping "
        "filters: the broker delivers a message once per matching filter.",
    )
    mqtt_client_id: str = Field(
        "iotml-bridge",
        description="MQTT client id. Fixed, so the broker keeps this bridge's persistent "
        "session (and its backlog) across restarts; give each replica its own.",
    )
    mqtt_share_group: str | None = Field(
        None,
        description="Subscribe as $share/<group>/<filter> (MQTT 5 shared subscription) so "
        "that replicas with different client ids split the messages.",
    )
    mqtt_protocol: Literal["5", "3.1.1"] = Field(
        "5", description="MQTT protocol version (5 for Receive Maximum and shared subscriptions)."
    )
    mqtt_session_expiry: DurationMs = Field(
        D("7d"),
        description="MQTT 5 session expiry: how long the broker keeps the session and its "
        "backlog while the bridge is away.",
    )
    mqtt_keepalive: int = Field(30, ge=5, le=3600, description="MQTT keepalive, seconds.")
    mqtt_reconnect_min: DurationMs = Field(D("500ms"), description="First MQTT reconnect delay.")
    mqtt_reconnect_max: DurationMs = Field(
        D("30s"), description="Longest MQTT reconnect delay (the delay doubles up to it)."
    )
    max_in_flight: int = Field(
        10_000,
        ge=1,
        le=65_535,
        description="Messages read from MQTT and not yet acknowledged (waiting for Kafka). "
        "Sent to the broker as MQTT 5 Receive Maximum, and reading pauses at the cap, so "
        "memory stays bounded while Kafka is down. Throughput <= cap / Kafka latency.",
    )
    max_payload_bytes: int = Field(
        65_536, ge=1, description="Larger payloads are dead-lettered (reason oversize)."
    )
    max_dead_letter_bytes: int = Field(
        DEFAULT_MAX_BYTES,
        ge=4096,
        le=1_000_000,
        description="Size budget of a dead-letter record (payload, key and headers; at most "
        "the producer's message.max.bytes, 1000000). A payload that does not fit is cut to a "
        "prefix, with headers iotml.error.truncated=true, iotml.error.original_size and "
        "iotml.error.sha256 (of the whole payload).",
    )
    kafka_linger: DurationMs = Field(
        D("10ms"), description="Producer linger: how long a Kafka batch may wait to fill."
    )
    kafka_compression: Literal["none", "lz4", "zstd", "snappy", "gzip"] = Field(
        "lz4", description="Compression of Kafka batches."
    )
    kafka_delivery_timeout: DurationMs = Field(
        D("2m"),
        description="librdkafka message timeout; an undelivered record is then produced "
        "again (never acked, never dropped).",
    )
    shutdown_timeout: DurationMs = Field(
        D("30s"),
        description="On SIGTERM, how long to wait for Kafka to confirm what was read; "
        "unconfirmed messages stay unacked and the broker redelivers them.",
    )

    @model_validator(mode="after")
    def _check_routes(self) -> BridgeSettings:
        for text in self.routes:
            try:
                parse_route(text, self.topic_readings)
            except ValueError as exc:
                raise ValueError(f"IOTML_ROUTES / --routes: {exc}") from None
        if self.mqtt_share_group is not None and (
            not self.mqtt_share_group or any(c in self.mqtt_share_group for c in "/+#")
        ):
            raise ValueError("IOTML_MQTT_SHARE_GROUP must be a name without / + #")
        if self.mqtt_share_group and self.mqtt_protocol != "5":
            raise ValueError("shared subscriptions (IOTML_MQTT_SHARE_GROUP) need MQTT 5")
        return self


class SimulatorSettings(MqttSettings):
    """``iotml simulate``: a fleet of devices publishing readings at QoS 1."""

    sim_devices: int = Field(10, ge=1, description="Number of devices.")
    sim_sites: int = Field(2, ge=1, description="Devices are spread over this many sites.")
    sim_device_prefix: str = Field(
        "dev", description="Device ids are <prefix>-0000, <prefix>-0001, ..."
    )
    sim_metric: str = Field("temperature", description="Metric name (last topic level).")
    sim_topic: str = Field(
        "sensors/{site}/{device}/{metric}",
        description="Topic template; the default matches the bridge's default route.",
    )
    sim_interval: DurationMs = Field(
        D("1s"), description="Wall-clock time between two messages of one device."
    )
    sim_rate: float = Field(
        0.0,
        ge=0,
        description="Total messages per second over all devices; overrides --sim-interval "
        "(0: use the interval). With --sim-as-fast-as-possible the rate is unbounded.",
    )
    sim_as_fast_as_possible: bool = Field(
        False, description="Publish as fast as the broker accepts (load tests)."
    )
    sim_speedup: float = Field(
        1.0,
        gt=0,
        description="Simulated time per wall-clock time. Synthetic fleet: the physical model "
        "advances interval x speedup per message. CSV replay: speedup > 1 replays rows at "
        "row_interval / speedup (unless --sim-rate/--sim-interval is given). Event times are "
        "always the wall clock at publication: Kafka rejects records more than 1h in the "
        "future, so a sped-up replay never stamps simulated times.",
    )
    sim_csv: Path | None = Field(
        None,
        description="Replay this CSV (timestamp,value with a header row, e.g. NAB) instead of "
        "the synthetic fleet; each device is offset in value and phase.",
    )
    sim_faults: StrList = Field(
        [],
        description="Injected faults, device:kind[@start[-end]] (device '*' = all), kind one "
        "of overheat (temperature ramp), drop (sudden drop), stuck (constant value), dropout "
        "(stops publishing), malformed (bad payloads at --sim-malformed-rate), regime "
        "(faster, noisier dynamics inside the normal band); start and end are durations "
        "from the start of the run (no end: for good), e.g. dev-0003:overheat@10m or "
        "dev-0003:drop@1m-5m (back to normal after 5 minutes).",
    )
    sim_malformed_rate: float = Field(
        0.1, ge=0, le=1, description="Fraction of a 'malformed' device's payloads that are bad."
    )
    sim_seed: int = Field(0, description="Random seed: the same seed gives the same fleet.")
    sim_duration: DurationMs | None = Field(None, description="Stop after this long.")
    sim_count: int | None = Field(None, ge=1, description="Stop after this many messages.")
    sim_qos: int = Field(1, ge=0, le=1, description="MQTT QoS of the published messages (0 or 1).")
    sim_client_id: str = Field("iotml-simulator", description="MQTT client id of the simulator.")
    sim_progress: DurationMs = Field(D("5s"), description="How often to print progress (0: never).")

    @model_validator(mode="after")
    def _check_faults(self) -> SimulatorSettings:
        from iotml.core.fleet import parse_fault

        for text in self.sim_faults:
            try:
                parse_fault(text)
            except ValueError as exc:
                raise ValueError(f"IOTML_SIM_FAULTS / --sim-faults: {exc}") from None
        return self
