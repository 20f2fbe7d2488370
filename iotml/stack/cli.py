"""``iotml stack up | down | status``: the local Kafka + Mosquitto."""

from __future__ import annotations

from typing import Any

import click

from iotml.core.logs import setup_logging
from iotml.core.options import build_settings, settings_options
from iotml.stack.kafka import KafkaBroker
from iotml.stack.mosquitto import MosquittoBroker
from iotml.stack.settings import JarSettings, StackPlaces, StackSettings


def brokers(s: StackPlaces) -> tuple[KafkaBroker, MosquittoBroker]:
    kafka = KafkaBroker(
        data_dir=s.stack_dir / "kafka",
        port=s.kafka_port,
        controller_port=s.kafka_controller_port,
        version=s.kafka_version,
        cache_dir=s.cache_dir,
        heap=s.kafka_heap,
    )
    mqtt = MosquittoBroker(data_dir=s.stack_dir / "mosquitto", port=s.mqtt_port, bind=s.mqtt_bind)
    return kafka, mqtt


def stack_up(s: StackSettings, ensure: bool = True) -> tuple[KafkaBroker, MosquittoBroker]:
    """Start both brokers (idempotent) and create the topics; used by `stack up` and the demo."""
    from iotml.core.topics import ensure_topics, topic_specs

    kafka, mqtt = brokers(s)
    click.echo(f"kafka: {'already running' if kafka.running() else 'starting'} ...", err=True)
    kafka.start()
    click.echo(f"mosquitto: {'already running' if mqtt.running() else 'starting'} ...", err=True)
    mqtt.start()
    if ensure:
        ensure_topics({"bootstrap.servers": kafka.bootstrap}, topic_specs(s))
    return kafka, mqtt


@click.group()
def stack() -> None:
    """Run a real local Apache Kafka 4 (KRaft, single node) and Mosquitto.

    Kafka's jars come from Maven Central (needs Java 17+ and Maven) and are cached;
    data persists in the stack directory across `down`/`up`.
    """


@stack.command("up")
@settings_options(StackSettings)
def up(**kwargs: Any) -> None:
    """Start Kafka and Mosquitto (idempotent), create the iotml topics, print the endpoints."""
    s = build_settings(StackSettings, kwargs)
    setup_logging(s.log_level)
    kafka, mqtt = stack_up(s)
    click.echo(f"IOTML_KAFKA_BOOTSTRAP=localhost:{kafka.port}")
    click.echo(f"IOTML_MQTT_URL={mqtt.url}")


@stack.command("fetch")
@settings_options(JarSettings)
def fetch(**kwargs: Any) -> None:
    """Resolve and cache the Kafka jars from Maven Central (done by `up` when needed)."""
    from iotml.stack.jars import kafka_libs

    s = build_settings(JarSettings, kwargs)
    click.echo(f"kafka {s.kafka_version} jars: {kafka_libs(s.cache_dir, s.kafka_version)}")


@stack.command("down")
@settings_options(StackPlaces)
def down(**kwargs: Any) -> None:
    """Stop Kafka (controlled shutdown) and Mosquitto (saves its persistence); data is kept."""
    s = build_settings(StackPlaces, kwargs)
    kafka, mqtt = brokers(s)
    click.echo("kafka: " + ("stopped" if kafka.stop() else "was not running"))
    click.echo("mosquitto: " + ("stopped" if mqtt.stop() else "was not running"))


@stack.command("status")
@settings_options(StackPlaces)
def status(**kwargs: Any) -> None:
    """Say what runs where. Exit status 0 only when both brokers run."""
    s = build_settings(StackPlaces, kwargs)
    kafka, mqtt = brokers(s)
    kpid, mpid = kafka.pid(), mqtt.pid()
    click.echo(
        f"kafka      {'running' if kpid else 'stopped'}"
        + (f"  pid {kpid}  bootstrap localhost:{kafka.port}  data {kafka.data_dir}" if kpid else "")
    )
    click.echo(
        f"mosquitto  {'running' if mpid else 'stopped'}"
        + (f"  pid {mpid}  url {mqtt.url}  data {mqtt.data_dir}" if mpid else "")
    )
    raise SystemExit(0 if kpid and mpid else 3)
