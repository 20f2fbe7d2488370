"""iotml: the core every service shares (``iotml.core``) and the application layer on top
(the ``iotml`` command line, the local stack, the demo)."""

__version__ = "0.1.0"
