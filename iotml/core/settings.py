"""Settings shared by every service, and the typed fields they are built from.

Each service defines one pydantic-settings class (subclassing the mixins here) in its own
``settings`` module; ``iotml.cli`` turns its fields into command-line options whose help
names the ``IOTML_*`` variable behind them. Precedence: flag > environment > default.
Nothing reads the environment at import: settings are built in each command's ``main``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from iotml.core.durations import duration_ms_field
from iotml.core.durations import parse_duration_ms as D
from iotml.core.eventtime import EventTimeRange

#: A duration given as "500ms", "10s", "30m", "1h" or "7d"; held as milliseconds.
DurationMs = Annotated[int, BeforeValidator(duration_ms_field)]


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]
    return value


#: A list given as repeated flags, or in the environment as a comma-separated string.
StrList = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]


def _readable_file(path: Path | None) -> Path | None:
    """``path`` when it names a file this process can read; a TLS library given anything
    else fails later with an OpenSSL code that names neither the setting nor the file."""
    if path is None:
        return None
    if not path.exists():
        raise ValueError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a PEM file")
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    return path


ENV_PREFIX = "IOTML_"


def data_home() -> Path:
    """Where iotml keeps local data by default: ``$XDG_DATA_HOME/iotml``."""
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "iotml"


class ServiceSettings(BaseSettings):
    """Base of every service's settings: ``IOTML_`` variables, immutable once built."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", validate_default=True
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )


class KafkaSettings(ServiceSettings):
    """How to reach Kafka, shared by every service that talks to it."""

    kafka_bootstrap: str = Field(
        "localhost:9092", description="Kafka bootstrap servers, host:port[,host:port...]."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism (with SASL_* protocols)."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    kafka_ssl_ca: Path | None = Field(None, description="CA bundle (PEM) to verify the brokers.")
    kafka_ssl_cert: Path | None = Field(None, description="Client certificate (PEM) for mTLS.")
    kafka_ssl_key: Path | None = Field(None, description="Client private key (PEM) for mTLS.")
    kafka_ssl_key_password: SecretStr | None = Field(
        None, description="Password of the client key (secret)."
    )

    _check_kafka_files = field_validator("kafka_ssl_ca", "kafka_ssl_cert", "kafka_ssl_key")(
        _readable_file
    )

    @model_validator(mode="after")
    def _check_kafka(self) -> KafkaSettings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                "IOTML_KAFKA_SECURITY_PROTOCOL=SASL_* needs IOTML_KAFKA_SASL_MECHANISM, "
                "IOTML_KAFKA_SASL_USERNAME and IOTML_KAFKA_SASL_PASSWORD"
            )
        if (self.kafka_ssl_cert is None) != (self.kafka_ssl_key is None):
            raise ValueError(
                "IOTML_KAFKA_SSL_CERT and IOTML_KAFKA_SSL_KEY go together (client certificate "
                "and its key): set both or neither"
            )
        tls_files = self.kafka_ssl_ca or self.kafka_ssl_cert
        if tls_files and not self.kafka_security_protocol.endswith("SSL"):
            raise ValueError(
                f"IOTML_KAFKA_SSL_* files are set but IOTML_KAFKA_SECURITY_PROTOCOL is "
                f"{self.kafka_security_protocol}, which does not use TLS: set it to SSL or SASL_SSL"
            )
        return self

    def kafka_config(self) -> dict[str, Any]:
        """librdkafka settings for any client (producer, consumer, admin, quixstreams)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap,
            "security.protocol": self.kafka_security_protocol.lower(),
        }
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            conf["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password:
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_ca:
            conf["ssl.ca.location"] = str(self.kafka_ssl_ca)
        if self.kafka_ssl_cert:
            conf["ssl.certificate.location"] = str(self.kafka_ssl_cert)
        if self.kafka_ssl_key:
            conf["ssl.key.location"] = str(self.kafka_ssl_key)
        if self.kafka_ssl_key_password:
            conf["ssl.key.password"] = self.kafka_ssl_key_password.get_secret_value()
        return conf


class EventTimeSettings(ServiceSettings):
    """Which event times a service accepts (the bridge and the processor check them)."""

    event_max_age: DurationMs = Field(
        D("7d"),
        description="Oldest accepted event time, relative to now. Older readings are "
        "dead-lettered (ts_too_old): Kafka's time-based retention would delete them at once.",
    )
    event_max_future: DurationMs = Field(
        D("10m"),
        description="How far in the future an event time may be (clock skew). Kafka 4 "
        "rejects records stamped more than 1h ahead, so this must stay below 1h.",
    )

    @model_validator(mode="after")
    def _check_event_time(self) -> EventTimeSettings:
        if self.event_max_future >= 3_600_000:
            raise ValueError("IOTML_EVENT_MAX_FUTURE must be below 1h (Kafka rejects such records)")
        return self

    def event_range(self) -> EventTimeRange:
        return EventTimeRange(max_age_ms=self.event_max_age, max_future_ms=self.event_max_future)


class MqttSettings(ServiceSettings):
    """How to reach the MQTT broker (bridge, simulator, demo)."""

    mqtt_url: str = Field(
        "mqtt://localhost:1883",
        description="MQTT broker URL: mqtt://host:port, or mqtts://host:port for TLS.",
    )
    mqtt_username: str | None = Field(None, description="MQTT user name.")
    mqtt_password: SecretStr | None = Field(None, description="MQTT password (secret).")
    mqtt_ca: Path | None = Field(None, description="CA bundle (PEM) to verify the MQTT broker.")
    mqtt_cert: Path | None = Field(None, description="Client certificate (PEM) for MQTT mTLS.")
    mqtt_key: Path | None = Field(None, description="Client private key (PEM) for MQTT mTLS.")

    _check_mqtt_files = field_validator("mqtt_ca", "mqtt_cert", "mqtt_key")(_readable_file)

    @model_validator(mode="after")
    def _check_mqtt(self) -> MqttSettings:
        parse_mqtt_url(self.mqtt_url)
        return self

    def mqtt_endpoint(self) -> tuple[str, int, bool]:
        """``(host, port, tls)`` from ``mqtt_url``."""
        return parse_mqtt_url(self.mqtt_url)


def parse_mqtt_url(url: str) -> tuple[str, int, bool]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"IOTML_MQTT_URL must start with mqtt:// or mqtts://, got {url!r}")
    tls = parts.scheme in ("mqtts", "ssl")
    if not parts.hostname:
        raise ValueError(f"IOTML_MQTT_URL has no host: {url!r}")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ValueError(f"IOTML_MQTT_URL has an invalid port: {url!r}") from None
    return parts.hostname, port, tls


#: The model name every command uses unless told otherwise.
DEFAULT_MODEL_NAME = "machine-temperature"


class ModelLocation(ServiceSettings):
    """Where a model lives: one registry and one name, for every command that reads or
    writes models (train, evaluate, models, batch, processor, demo)."""

    model_registry: Path = Field(
        default_factory=lambda: data_home() / "models",
        description="Model registry directory (<registry>/<name>/<version>/ plus a LATEST "
        "pointer per name).",
    )
    model_name: str = Field(
        DEFAULT_MODEL_NAME,
        description="Model name in the registry (readers follow its LATEST pointer).",
    )


class GraceSetting(ServiceSettings):
    """The windows' grace period, read from the model's manifest unless overridden."""

    grace: DurationMs | None = Field(
        None,
        description="How long after a window's end (in the device's event time) readings "
        "for it are still accepted; later ones are late. Default: the grace the model was "
        "trained with (its manifest).",
    )


class ClockSettings(ServiceSettings):
    """The partition clock's thresholds (the processor, and ``iotml batch`` replaying it)."""

    idle_timeout: DurationMs | None = Field(
        None,
        description="A device without a reading for this much partition event time is "
        "quiet: its open windows close at its own (estimated) time. Default: one model "
        "window plus the grace period.",
    )
    silence_timeout: DurationMs | None = Field(
        None,
        description="Event time without readings after which device_silent opens "
        "(default: the model's alert parameters; 0 disables).",
    )
    device_ttl: DurationMs = Field(
        D("7d"),
        description="A device silent for this much partition event time is forgotten: its "
        "open alerts clear, then its state is deleted (changelog tombstones). 0 keeps "
        "devices forever.",
    )


class HttpSettings(ServiceSettings):
    """The metrics/health HTTP endpoint of a long-running service."""

    http_port: int = Field(
        8000, ge=0, le=65535, description="Port for /metrics, /healthz and /readyz (0: off)."
    )
    http_host: str = Field("0.0.0.0", description="Address the HTTP endpoint binds to.")
