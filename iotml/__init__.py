"""iotml: shared contracts (records, topics, settings) and the ``iotml`` command line."""

from iotml.errors import ConfigError, IotmlError

__all__ = ["ConfigError", "IotmlError"]
__version__ = "0.1.0"
