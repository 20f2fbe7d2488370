"""The exception base of the ``models`` package."""

from __future__ import annotations

import zipfile
from pathlib import Path

from iotml.core.errors import IotmlError


class ModelError(IotmlError, RuntimeError):
    """Base of every error raised by ``models`` (a caller catching ``IotmlError`` sees it)."""


class ArtifactNotFound(ModelError, LookupError):
    """The registry holds no such model name or version."""


class IncompatibleArtifact(ModelError, ValueError):
    """An artifact's manifest cannot be used here (format, features or library mismatch)."""


class DataError(ModelError, ValueError):
    """Input data cannot be used for training or evaluation (empty, wrong columns...)."""


class UnreadableArtifact(IncompatibleArtifact):
    """A file of a model version exists (or should) but cannot be read or parsed: missing,
    truncated, overwritten or not readable by this user."""

    def __init__(self, file: Path, why: str) -> None:
        super().__init__(f"cannot load {file}: {why}")
        self.file = file

    @classmethod
    def from_error(cls, file: Path, exc: BaseException) -> UnreadableArtifact:
        """The error for ``file`` that failed to load with ``exc``, saying whether it is
        missing, unreadable or corrupt (Keras reports all three as "File not found")."""
        try:
            with open(file, "rb"):
                pass
        except FileNotFoundError:
            return cls(file, "no such file (the version directory is incomplete)")
        except OSError as err:
            return cls(file, f"the file is unreadable ({err.strerror or err})")
        if file.suffix == ".keras" and not zipfile.is_zipfile(file):
            detail = "not a .keras zip archive: truncated or overwritten?"
        else:
            first = str(exc).strip().splitlines()
            detail = f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__
        return cls(file, f"the file is unreadable or corrupt ({detail})")
