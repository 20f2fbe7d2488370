"""``iotml batch --engine local`` shows its progress on stderr: redrawn at most once a second
on a terminal, a plain line every 30 s elsewhere (nothing for a short run), and the replay
behind it gives the same view as before."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import models.cli._batch as cli_batch
from models.archive import write_rows
from models.batch import replay_view
from models.cli import batch
from models.cli._progress import ReplayProgress
from models.clock import rules_for
from models.registry import Artifact
from models.replay import run_clocked
from tests.unit.test_batch_clock import PARAMS, fleet
from tests.unit.test_processor_core import SPEC, T0, PlusOne


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _artifact() -> Artifact:
    return Artifact("m", "v0001", Path("."), {}, SPEC, PARAMS, PlusOne())  # type: ignore[arg-type]


def _meter(tty: bool, sizes: dict[int, int] | None = None) -> tuple[ReplayProgress, Any, Clock]:
    stream, clock = io.StringIO(), Clock()
    meter = ReplayProgress(sizes or {0: 3000, 1: 1000}, stream=stream, tty=tty, clock=clock)
    return meter, stream, clock


def test_off_a_terminal_a_short_replay_prints_nothing():
    meter, stream, clock = _meter(tty=False)
    for done in (1000, 2000, 3000):
        clock.now += 5
        meter(0, done)
    meter(1, 1000)
    meter.note("read 4,000 readings")
    meter.close()
    assert stream.getvalue() == ""


def test_off_a_terminal_a_line_every_30_seconds_and_a_last_one():
    meter, stream, clock = _meter(tty=False)
    for done in range(100, 3001, 100):  # 30 calls, 2 s apart: 60 s
        clock.now += 2
        meter(0, done)
    clock.now += 20
    meter(1, 1000)
    meter.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in stream.getvalue() and "[" not in lines[0]
    assert lines[0].startswith("replay   38%  1,500/4,000 readings  50/s  eta 50s")
    assert lines[0].endswith("partition 0 (1/2): 1,500/3,000")
    assert "3,000/4,000 readings" in lines[1]
    assert lines[2] == "replay: 4,000 readings in 80.0s (50/s)"


def test_on_a_terminal_one_line_redrawn_at_most_once_a_second():
    meter, stream, clock = _meter(tty=True)
    for i in range(1, 241):  # 240 calls, 1/8 s apart
        clock.now += 0.125
        meter(0, 12 * i)
    draws = stream.getvalue().split("\r")[1:]
    assert len(draws) == 30
    assert all(d.endswith("\x1b[K") and "\n" not in d for d in draws)
    assert "[####----------------]   24%  960/4,000 readings  96/s" in draws[9]
    meter(0, 3000)
    meter(1, 1000)
    meter.close()
    assert stream.getvalue().endswith("\rreplay: 4,000 readings in 30.0s (133/s)\x1b[K\n")


def test_a_note_is_a_line_of_its_own_on_a_terminal_only():
    meter, stream, _ = _meter(tty=True)
    meter.note("read 4,000 readings from archive in 0.5s")
    assert stream.getvalue() == "read 4,000 readings from archive in 0.5s\n"


def test_the_line_names_the_partition_and_a_long_eta():
    meter, _, clock = _meter(tty=False, sizes={3: 10, 7: 1_000_000})
    meter(3, 10)
    clock.now += 100
    meter(7, 1000)
    line = meter.line(clock.now)
    assert "partition 7 (2/2): 1,000/1,000,000" in line
    assert "eta 27h" in line  # 1,010 readings in 100 s, 998,990 to go


def test_replay_view_gives_run_clockeds_view_and_counts_each_partition():
    records = fleet()  # two partitions, interleaved
    rules = rules_for(SPEC, 0, None, PARAMS.silence_ms, 180_000)
    want = run_clocked(records, _artifact(), 0, rules, flush=True)
    told: list[tuple[int, int]] = []
    got = replay_view(
        records, _artifact(), 0, rules, True, lambda k, n: told.append((k, n)), every=150
    )
    assert got.predictions == want.predictions and got.alerts == want.alerts
    assert got.late == want.late
    assert [(w.device_id, w.stats) for w in got.windows] == [
        (w.device_id, w.stats) for w in want.windows
    ]
    sizes = Counter(r[0] for r in records)
    assert [n for k, n in told if k == 0] == [*range(150, sizes[0], 150), sizes[0]]
    assert told[-1] == (1, sizes[1]) and [k for k, _ in told] == sorted(k for k, _ in told)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    rows = [
        {
            "device_id": f"d{i}",
            "ts": T0 + s * 1000,
            "metrics": {"temp": 20.0 + s % 5},
            "tags": {},
            "v": 1,
            "kafka_partition": i,
            "kafka_offset": s,
            "kafka_ts": T0 + s * 1000,
        }
        for s in range(300)
        for i in range(2)
    ]
    write_rows(tmp_path / "archive", rows)
    return tmp_path / "archive"


def test_the_command_keeps_stdout_to_the_summary_and_is_quiet_off_a_terminal(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    class FakeRegistry:
        def __init__(self, root: Any) -> None:
            pass

        def load(self, name: str, version: str | None = None, **_: Any) -> Artifact:
            return _artifact()

    monkeypatch.setattr(cli_batch, "Registry", FakeRegistry)
    args = ["--input", str(archive), "--model-name", "m", "--output", str(tmp_path / "out")]
    result = CliRunner().invoke(batch, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["readings"] == 600
    assert result.stderr == ""
