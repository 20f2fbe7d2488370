"""Child processes of the broker tests: stopping one the way its users would."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable


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
