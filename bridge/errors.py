"""The exception base of the bridge package."""

from iotml.core.errors import IotmlError


class BridgeError(IotmlError, RuntimeError):
    """The bridge or the simulator cannot run (bad route, unreachable broker at start...)."""


class RouteError(BridgeError, ValueError):
    """A route in ``IOTML_ROUTES`` is malformed; the message says which and why."""
