"""Score iotml's alerts on the Numenta Anomaly Benchmark (standard profile).

Each file is one device's stream: the system starts with no model, learns from the file's
probation rows, then replays every row through the processor's code; each alert ``open``
(``anomaly`` by likelihood, ``deviation`` from the device's own band) is a detection (see
models/nab_replay.py). Scoring follows NAB's rules (models/nab.py).

    python bench/nab.py [--data DIR] [--windows FILE] [--files KEY[,KEY...]] [--json]
    python bench/nab.py --lofo      # settings chosen leave-one-file-out (a few minutes)

Defaults read ``../shared/data/nab`` beside the checkout. With ``--json`` it prints one
JSON object: ``{"files": [{"file", "score", "detections", "windows", "windows_detected",
"false_positives"}], "total"}``; detections are the scored rows' times (as in the file,
no zone). Otherwise a per-file table, and the total beside the published detectors'
totals on the same files (``anchor_scores_standard.csv`` next to the labels directory).

``--lofo`` runs every setting of :data:`GRID` on every file, then scores each file with
the setting that did best on the *other* files (no tuning on the answers), and prints
that total beside the total of the one setting best on all files together.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NAB = REPO.parent / "shared" / "data" / "nab"
sys.path.insert(0, str(REPO))  # run as a script from anywhere


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=NAB / "data", help="NAB's data/ directory")
    parser.add_argument(
        "--windows",
        type=Path,
        default=NAB / "labels" / "combined_windows.json",
        help="NAB's combined_windows.json",
    )
    parser.add_argument("--files", default=None, help="comma-separated keys (default: all)")
    parser.add_argument("--anchors", type=Path, default=None, help="published scores CSV")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--lofo", action="store_true", help="choose the settings leave-one-file-out from GRID"
    )
    args = parser.parse_args(argv)
    from iotml.core.logs import quiet_tensorflow

    quiet_tensorflow()  # the one place that decides TensorFlow's log level
    from models.nab_data import load_file, read_windows
    from models.nab_replay import Settings, run_file

    windows = read_windows(args.windows)
    keys = args.files.split(",") if args.files else sorted(windows)
    if args.lofo:
        return _lofo([load_file(args.data, windows, k.strip()) for k in keys], args.json)
    settings = Settings()
    runs = []
    with tempfile.TemporaryDirectory(prefix="iotml-nab-") as workdir:
        for key in keys:
            nab = load_file(args.data, windows, key.strip())
            run = run_file(nab, settings, Path(workdir))
            note = run.version or f"no model: {run.why_no_model}"
            print(f"{key}: {run.result.score:.3f} ({note})", file=sys.stderr)
            runs.append((nab, run))
    total = sum(run.result.score for _, run in runs)
    if args.json:
        print(json.dumps({"files": [_file_json(nab, run) for nab, run in runs], "total": total}))
        return 0
    anchors_path = args.anchors or args.windows.parent.parent / "anchor_scores_standard.csv"
    _print_table(runs, total, anchors_path)
    return 0


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _file_json(nab: Any, run: Any) -> dict[str, Any]:
    from models.nab import probation_rows

    scored = [i for i in run.detections if i >= probation_rows(nab.rows)]
    return {
        "file": run.key,
        "score": run.result.score,
        "detections": [_iso(nab.timestamps[i]) for i in scored],
        "windows": run.result.windows,
        "windows_detected": run.result.windows_detected,
        "false_positives": run.result.false_positives,
    }


def _print_table(runs: list[Any], total: float, anchors_path: Path) -> None:
    from models.nab_data import read_anchor_scores

    anchors = read_anchor_scores(anchors_path) if anchors_path.exists() else {}
    keys = [run.key for _, run in runs]
    best = max(anchors, key=lambda d: sum(anchors[d].get(k, 0.0) for k in keys), default=None)
    head = f"{'file':58} {'win':>3} {'det':>3} {'FP':>4} {'score':>7} {'null':>6}"
    if best is not None:
        head += f" {best:>8}"
    print(head)
    for _, run in runs:
        r = run.result
        line = f"{run.key:58} {r.windows:3} {r.windows_detected:3} {r.false_positives:4}"
        line += f" {r.score:7.3f} {anchors.get('null', {}).get(run.key, float('nan')):6.2f}"
        if best is not None:
            line += f" {anchors[best].get(run.key, float('nan')):8.3f}"
        print(line)
    print(f"\n{'iotml':34} {total:8.3f}")
    totals = {d: sum(scores.get(k, 0.0) for k in keys) for d, scores in anchors.items()}
    for detector, value in sorted(totals.items(), key=lambda kv: -kv[1]):
        missing = [k for k in keys if k not in anchors[detector]]
        note = f"  (no score for {len(missing)} files)" if missing else ""
        print(f"{detector:34} {value:8.3f}{note}")


def grid() -> list[Any]:
    """The settings ``--lofo`` chooses from (declared before looking at any score)."""
    from models.nab_replay import Settings

    return [
        Settings(window_intervals=w, likelihood=t, likelihood_short=n, deviation_z=z)
        for w in (1, 2)
        for t in (0.999, 0.9999, 0.99999)
        for n in (1, 2, 3)
        for z in (6.0, 12.0)
    ]


def _lofo(files: list[Any], as_json: bool) -> int:
    from models.nab_replay import run_file

    settings = grid()
    scores: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="iotml-nab-") as workdir:
        for i, s in enumerate(settings, 1):
            scores.append({f.key: run_file(f, s, Path(workdir)).result.score for f in files})
            print(f"setting {i}/{len(settings)}: {sum(scores[-1].values()):.3f}", file=sys.stderr)
    keys = [f.key for f in files]
    best_all = max(range(len(settings)), key=lambda i: sum(scores[i].values()))
    held_out: dict[str, tuple[int, float]] = {}
    for key in keys:
        i = max(
            range(len(settings)), key=lambda j: sum(v for k, v in scores[j].items() if k != key)
        )
        held_out[key] = (i, scores[i][key])
    lofo_total = sum(v for _, v in held_out.values())
    if as_json:
        print(
            json.dumps(
                {
                    "lofo_total": lofo_total,
                    "tuned_on_all_total": sum(scores[best_all].values()),
                    "files": [
                        {"file": k, "score": v, "setting": repr(settings[i])}
                        for k, (i, v) in held_out.items()
                    ],
                }
            )
        )
        return 0
    for key, (i, value) in held_out.items():
        s = settings[i]
        print(
            f"{key:58} {value:7.3f}  (window x{s.window_intervals}, likelihood "
            f"{s.likelihood}, short {s.likelihood_short}, deviation {s.deviation_z:g})"
        )
    print(f"\nleave-one-file-out total {lofo_total:8.3f}")
    print(
        f"tuned on all files       {sum(scores[best_all].values()):8.3f}  ({settings[best_all]!r})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
