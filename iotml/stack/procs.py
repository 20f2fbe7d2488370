"""Small process helpers: pid files, liveness, graceful stop, free ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Collection
from pathlib import Path
from typing import ClassVar


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def read_pid(pidfile: Path, marker: str) -> int | None:
    """The pid in ``pidfile`` if that process runs and its command line contains ``marker``
    (so a recycled pid is never mistaken for our broker)."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    if pid_alive(pid) and marker in cmdline(pid):
        return pid
    return None


def stop_pid(pid: int, timeout: float, sig: int = signal.SIGTERM) -> bool:
    """Send ``sig`` and wait; SIGKILL after ``timeout``. True if it stopped gracefully."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            _reap(pid)
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while pid_alive(pid):
        time.sleep(0.05)
    _reap(pid)
    return False


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket() as s:
        s.settimeout(timeout)
        return s.connect_ex((host, port)) == 0


def free_port(avoid: Collection[int] = ()) -> int:
    """A port nothing listens on now, other than the ones in ``avoid`` (handed to
    processes that have not bound them yet)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in avoid:
            return port


class ManagedProcess:
    """A broker process started in its own session, tracked by a pid file in ``data_dir``.

    Subclasses are dataclasses with ``data_dir`` and ``_proc`` fields, a ``NAME`` and a
    ``_marker()`` (a path on the process's command line, so a recycled pid is never
    mistaken for ours).
    """

    NAME: ClassVar[str]
    data_dir: Path
    _proc: subprocess.Popen[bytes] | None

    def _marker(self) -> str:
        raise NotImplementedError

    @property
    def _pidfile(self) -> Path:
        return self.data_dir / f"{self.NAME}.pid"

    def pid(self) -> int | None:
        return read_pid(self._pidfile, self._marker())

    def running(self) -> bool:
        return self.pid() is not None

    def _spawn(self, cmd: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives `iotml stack up`; not killed by Ctrl-C
            )
        self._pidfile.write_text(str(self._proc.pid))
        return self._proc

    def stop(self, timeout: float = 60.0) -> bool:
        """Graceful stop (SIGTERM), SIGKILL after ``timeout``. True if it was running."""
        return self._end(timeout, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, for fault tests: no graceful shutdown."""
        self._end(0, signal.SIGKILL)

    def _end(self, timeout: float, sig: int) -> bool:
        pid = self.pid()
        if pid is not None:
            stop_pid(pid, timeout, sig)
        if self._proc is not None:
            self._proc.wait()
            self._proc = None
        self._pidfile.unlink(missing_ok=True)
        return pid is not None


def port_or_free(port: int, host: str = "127.0.0.1") -> int:
    """``port`` when nothing listens on it, else a free one."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return free_port()
    return port
