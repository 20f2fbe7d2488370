"""Child processes of the broker tests: stopping one the way its users would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.shared_data import REPO


def stop_on_sigterm(
    proc: subprocess.Popen[bytes], timeout: float, what: str, output: Callable[[], str]
) -> int:
    """SIGTERM ``proc`` (if still running) and return its exit code; a child that does not
    exit within ``timeout`` is killed and fails the test with its ``output``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"{what} did not stop on SIGTERM:\n{output()}") from None


class IotmlChild:
    """An ``iotml`` command in a child process, its output in a log file."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "iotml", *args],
                env=dict(os.environ),
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )

    def stop(self, timeout: float = 30) -> int:
        return stop_on_sigterm(self.proc, timeout, self.log.name, self.text)

    def text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def wait_for_children(what: str, check: Callable[[], Any], timeout: float, *children: Any) -> Any:
    """``check()`` once it is true; fails with the children's logs when one exits first or
    ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        for child in children:
            if child.proc is not None and child.proc.poll() is not None:
                raise AssertionError(
                    f"{child.log.name} exited while waiting for {what}:\n{child.text()}"
                )
        time.sleep(0.1)
    logs = "\n".join(f"--- {c.log.name}\n{c.text()[-1500:]}" for c in children)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")
