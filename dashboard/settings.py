"""Settings of ``iotml dashboard`` (every ``IOTML_*`` variable it reads)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, model_validator

from iotml.core.durations import parse_duration_ms as D
from iotml.core.settings import DurationMs, HttpSettings, KafkaSettings
from iotml.core.topics import EvaluationsTopic, OutputTopics, ProcessorTopics

__all__ = ["DashboardSettings"]


# the topic spec's definition (name, default, help), so one variable renames it everywhere
_ALERT_STATE: Any = ProcessorTopics.model_fields["topic_alert_state"]


class DashboardTopics(OutputTopics, EvaluationsTopic):
    """The topics the dashboard reads (the definitions of the topic spec)."""

    topic_alert_state: str = _ALERT_STATE


class DashboardSettings(KafkaSettings, HttpSettings, DashboardTopics):
    """``iotml dashboard``: the live web page of predictions, alerts and evaluations."""

    http_host: str = Field(
        "127.0.0.1",
        description="Address the page (and /metrics, /healthz, /readyz) binds to; "
        "localhost unless told otherwise (0.0.0.0 in a container).",
    )
    http_port: int = Field(
        8080, ge=0, le=65535, description="Port of the page and its /metrics, /healthz, /readyz."
    )
    dashboard_username: str = Field(
        "iotml", min_length=1, description="User name of basic auth (with the password)."
    )
    dashboard_password: SecretStr | None = Field(
        None,
        description="Password of basic auth (secret); unset: no authentication, so keep "
        "the page on localhost. /healthz and /readyz stay open for probes.",
    )
    dashboard_history: DurationMs = Field(
        D("3h"),
        description="How far back the page looks: at start the service reads this much of "
        "each topic from Kafka (by timestamp), and the device view spans it.",
    )
    dashboard_max_points: int = Field(
        2000,
        ge=10,
        le=100_000,
        description="Points kept per device (the oldest drop out first), in the service "
        "and in each browser.",
    )
    dashboard_max_devices: int = Field(
        20_000,
        ge=1,
        description="Devices kept; beyond it the device not heard from the longest is "
        "forgotten, so memory stays bounded whatever the topics hold.",
    )
    dashboard_push_interval: DurationMs = Field(
        D("250ms"),
        description="How often the changes are pushed to the browsers (one event each): "
        "the longest a new record waits before it is sent.",
    )
    dashboard_client_queue: int = Field(
        120,
        ge=2,
        description="Pushes a browser may lag behind; one further behind is disconnected "
        "(its page reconnects and starts from a fresh snapshot).",
    )

    @model_validator(mode="after")
    def _check_push(self) -> DashboardSettings:
        if not 10 <= self.dashboard_push_interval <= 10_000:
            raise ValueError("IOTML_DASHBOARD_PUSH_INTERVAL must lie between 10ms and 10s")
        return self

    def input_topics(self) -> list[str]:
        """The topics read as streams (the alert-state topic is read once, at start)."""
        return [self.topic_predictions, self.topic_alerts, self.topic_evaluations]
