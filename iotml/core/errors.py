"""The exception base of the shared package."""


class IotmlError(Exception):
    """Base of every error raised by the shared iotml package."""


class ConfigError(IotmlError, ValueError):
    """A setting is missing or invalid; the message names the setting and its variable."""


class RecordError(IotmlError, ValueError):
    """A record does not match its contract. ``reason`` is a short, metric-friendly code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class StackError(IotmlError, RuntimeError):
    """The local Kafka/Mosquitto stack could not be started, stopped or inspected."""
