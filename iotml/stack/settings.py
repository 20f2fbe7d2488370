"""Settings of ``iotml stack``."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from iotml.core.settings import ServiceSettings, data_home
from iotml.core.topics import TopicLayout


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "iotml"


class JarSettings(ServiceSettings):
    """Which Kafka the stack runs and where its jars are cached (``iotml stack fetch``)."""

    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Where the Kafka jars resolved from Maven Central are cached.",
    )
    kafka_version: str = Field("4.1.1", description="Apache Kafka version (4.x) to run.")


class StackPlaces(JarSettings):
    """Where the local Kafka and Mosquitto run (``iotml stack down | status``): no topics,
    which only ``up`` creates."""

    stack_dir: Path = Field(
        default_factory=lambda: data_home() / "stack",
        description="Data directory of the local stack (Kafka log dir, Mosquitto persistence).",
    )
    kafka_port: int = Field(9092, ge=1, le=65535, description="Kafka client port.")
    kafka_controller_port: int = Field(9093, ge=1, le=65535, description="KRaft controller port.")
    kafka_heap: str = Field("512m", description="Java heap of the Kafka broker (-Xmx).")
    mqtt_port: int = Field(1883, ge=1, le=65535, description="Mosquitto port.")
    mqtt_bind: str = Field("127.0.0.1", description="Address Mosquitto listens on.")


class StackSettings(StackPlaces, TopicLayout):
    """Where and how the local Kafka and Mosquitto run, and the topics ``up`` gives them. No
    Kafka client settings: the stack's clients talk to the broker it started."""
