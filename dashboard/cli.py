"""``iotml dashboard``."""

from __future__ import annotations

from typing import Any

import click

from dashboard.settings import DashboardSettings
from iotml.core.logs import setup_logging
from iotml.core.options import build_settings, settings_options


@click.command("dashboard")
@settings_options(DashboardSettings)
def dashboard(**kwargs: Any) -> None:
    """Serve the live web page: each device's forecasts against its actual values, the
    open alerts and the model's live skill, pushed to the browser as they arrive.

    Reads predictions, alerts and evaluations from Kafka (the last IOTML_DASHBOARD_HISTORY
    of them at start, by timestamp) and the open alerts from the compacted alert-state
    topic; keeps at most IOTML_DASHBOARD_MAX_POINTS points per device. Read-only. Binds to
    localhost unless told otherwise; set IOTML_DASHBOARD_PASSWORD for basic auth. The page,
    /metrics, /healthz and /readyz share IOTML_HTTP_PORT.
    """
    try:
        from dashboard.service import Dashboard
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"`iotml dashboard` needs the 'dashboard' extra (missing module {exc.name!r}): "
            'pip install "iotml[dashboard]"'
        ) from None

    settings = build_settings(DashboardSettings, kwargs)
    setup_logging(settings.log_level)
    Dashboard(settings).run()
