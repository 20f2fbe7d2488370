from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.shared_data import NAB_CSV, need_shared


@pytest.fixture
def nab_csv() -> Path:
    """The real NAB machine-temperature series."""
    return need_shared(NAB_CSV)


@pytest.fixture
def nab_labels() -> tuple[Path, Path]:
    """(combined_windows.json, combined_labels.json) of the NAB series."""
    return (
        need_shared("data/nab/labels/combined_windows.json"),
        need_shared("data/nab/labels/combined_labels.json"),
    )


@pytest.fixture(autouse=True)
def _leak_guard():
    """Fail a test that leaves IOTML_* variables or non-daemon threads behind."""
    env_before = {k: v for k, v in os.environ.items() if k.startswith("IOTML_")}
    threads_before = set(threading.enumerate())
    yield
    env_after = {k: v for k, v in os.environ.items() if k.startswith("IOTML_")}
    assert env_after == env_before, "test changed IOTML_* variables without monkeypatch"
    leaked = [
        t
        for t in threading.enumerate()
        if t not in threads_before and t.is_alive() and not t.daemon
    ]
    deadline = time.monotonic() + 30  # a loaded machine winds threads down slowly
    for t in leaked:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    leaked = [t for t in leaked if t.is_alive()]
    assert not leaked, f"test left threads running: {[t.name for t in leaked]}"
