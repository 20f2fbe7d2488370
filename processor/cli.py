"""``iotml processor``."""

from __future__ import annotations

from typing import Any

import click

from iotml.core.logs import setup_logging
from iotml.core.options import build_settings, settings_options
from processor.settings import ProcessorSettings


@click.command("processor")
@settings_options(ProcessorSettings)
def processor(**kwargs: Any) -> None:
    """Window readings per device in event time, forecast with the registry's model and
    write predictions and alerts.

    Consumes the readings topic (key = device id, Kafka timestamp = event time); for every
    closed window of every device writes one prediction (with the model version that made
    it) and the alert events of the models' alert rule. Invalid and late readings go to
    the processor dead-letter topic with the reason in headers. Follows the registry's
    LATEST pointer and swaps compatible new versions in without a restart. Several
    processes with the same consumer group split the partitions; state lives in
    quixstreams state with changelog topics. SIGTERM stops after a final commit.
    /metrics, /healthz and /readyz (503 until a model is loaded) on the HTTP port.
    """
    settings = build_settings(ProcessorSettings, kwargs)
    setup_logging(settings.log_level)
    from processor.app import Processor

    Processor(settings).run()
