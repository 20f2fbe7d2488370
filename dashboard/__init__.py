"""``iotml dashboard``: a live web page of the fleet's forecasts, alerts and model skill,
fed from Kafka and pushed to browsers over Server-Sent Events."""

from dashboard.settings import DashboardSettings

__all__ = ["DashboardSettings"]
