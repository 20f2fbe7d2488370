"""``iotml egress``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import click

from bridge.egress.settings import EgressSettings
from iotml.core.http import run_service
from iotml.core.logs import setup_logging
from iotml.core.options import build_settings, settings_options


def _version() -> str:
    try:
        return version("iotml")
    except PackageNotFoundError:
        return "unknown"


@click.command("egress")
@settings_options(EgressSettings)
def egress(**kwargs: Any) -> None:
    """Publish alerts (and forecasts) from Kafka to MQTT, at least once, in order per device.

    Each alert event goes to its device and type's topic at QoS 1, retained: the retained
    message is the latest event (open or cleared), so a subscriber that connects later sees
    the alerts open now. At start and after each reconnection the retained state is rebuilt
    from the compacted alert-state topic. Forecasts expire at their target time (MQTT 5).
    Kafka offsets are committed only once the broker acknowledged everything before them.
    SIGTERM: stop reading, wait for the acknowledgements, commit, exit.
    """
    from bridge.egress.service import Egress

    settings = build_settings(EgressSettings, kwargs)
    setup_logging(settings.log_level)
    run_service(Egress(settings, version=_version()), settings.http_host, settings.http_port)
