"""The Compose front end as the compose test drives it, and the test's report."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class Failed(Exception):
    """The compose test failed; the message says what and where."""


def say(message: str) -> None:
    print(f"compose-test: {message}", flush=True)


@dataclass
class Compose:
    binary: str
    files: list[Path]
    project: str
    profiles: tuple[str, ...] = ()  # "*": every service, whatever its profile

    def with_profiles(self, *profiles: str) -> Compose:
        return dataclasses.replace(self, profiles=profiles)

    def run(
        self,
        *args: str,
        timeout: float,
        capture: bool = False,
        check: bool = True,
        parallel: int = -1,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, "--project-name", self.project, "--progress", "plain"]
        for profile in self.profiles:
            cmd += ["--profile", profile]
        cmd += ["--parallel", str(parallel)]
        cmd += ["--project-directory", str(REPO)]  # a copy of the file elsewhere builds here too
        for f in self.files:
            cmd += ["--file", str(f)]
        try:
            proc = subprocess.run(
                [*cmd, *args], timeout=timeout, text=True, capture_output=capture, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise Failed(f"`compose {' '.join(args)}` took more than {timeout:.0f}s") from exc
        if check and proc.returncode != 0:
            detail = (proc.stdout or "") + (proc.stderr or "") if capture else ""
            raise Failed(f"`compose {' '.join(args)}` exited {proc.returncode}\n{detail[-3000:]}")
        return proc


@dataclass
class Report:
    timings: dict[str, float] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = time.monotonic() - start

    def print(self) -> None:
        for name, seconds in self.timings.items():
            say(f"time  {name:<28} {seconds:7.1f} s")
        for name, value in self.figures.items():
            say(f"{name:<34} {value}")
