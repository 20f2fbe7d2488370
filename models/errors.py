"""The exception base of the ``models`` package."""

from __future__ import annotations

from iotml.core.errors import IotmlError


class ModelError(IotmlError, RuntimeError):
    """Base of every error raised by ``models`` (a caller catching ``IotmlError`` sees it)."""


class ArtifactNotFound(ModelError, LookupError):
    """The registry holds no such model name or version."""


class IncompatibleArtifact(ModelError, ValueError):
    """An artifact's manifest cannot be used here (format, features or library mismatch)."""


class DataError(ModelError, ValueError):
    """Input data cannot be used for training or evaluation (empty, wrong columns...)."""
