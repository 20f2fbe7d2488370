"""Locating the real data in ``../shared`` (beside the checkout, never copied into it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("IOTML_SHARED_DIR", REPO.parent / "shared"))


NAB_CSV = "data/nab/data/realKnownCause/machine_temperature_system_failure.csv"


def need_shared(relative: str) -> Path:
    """The path of ``../shared/<relative>``; skips the test where it is absent (a user's
    clone) but fails under ``CI=true`` so that CI never hides these tests."""
    path = shared_dir() / relative
    if not path.exists():
        message = f"{path} not found: the real NAB data lives in ../shared beside the checkout"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: failing instead of skipping)")
        pytest.skip(message)
    return path
