"""``iotml simulate``."""

from __future__ import annotations

import signal
from typing import Any

import click

from bridge.settings import SimulatorSettings
from iotml.core.logs import setup_logging
from iotml.core.options import build_settings, settings_options


@click.command("simulate")
@settings_options(SimulatorSettings)
def simulate(**kwargs: Any) -> None:
    """Simulate a fleet of devices publishing readings over MQTT (QoS 1).

    By default a synthetic fleet from a small physical model (daily cycle, load changes,
    sensor noise; each device different); with --sim-csv a replay of a timestamp,value
    CSV, each device offset in value and phase. Faults can be injected per device.
    Payloads are stamped with the wall clock at publication, never with simulated time
    (Kafka rejects records more than 1h in the future). Prints progress; stops cleanly
    on Ctrl-C/SIGTERM, after --sim-duration or --sim-count.
    """
    from bridge.simulate import Simulator

    settings = build_settings(SimulatorSettings, kwargs)
    setup_logging(settings.log_level)
    sim = Simulator(settings, echo=lambda line: click.echo(line, err=True))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sim.stop())
    stats = sim.run()
    click.echo(
        f"published {stats.published} messages ({stats.malformed} malformed) "
        f"in {stats.seconds:.1f}s; {stats.acked} acknowledged by the broker"
    )
