"""The ``iotml evaluate --plot`` picture (matplotlib, the ``plot`` extra)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from models.errors import ModelError
from models.evaluation import Evaluation, Label


def plot_evaluation(result: Evaluation, labels: Sequence[Label], out: Path) -> None:
    """Actual vs forecast at the horizon, alerts as markers, labelled windows shaded."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError:
        raise ModelError("--plot needs matplotlib: pip install 'iotml[plot]'") from None

    def when(ms: int) -> float:
        return float(mdates.date2num(dt.datetime.fromtimestamp(ms / 1000, dt.UTC)))

    times = [when(t) for t, *_ in result.scored]
    fig, ax = plt.subplots(figsize=(16, 5))
    ax.plot(times, [s[2] for s in result.scored], lw=0.7, color="black", label="actual")
    ax.plot(times, [s[1] for s in result.scored], lw=0.7, color="tab:blue", label="forecast")
    for i, lb in enumerate(labels):
        ax.axvspan(
            when(lb.start),
            when(lb.end),
            color="tab:orange",
            alpha=0.2,
            label="labelled window" if i == 0 else None,
        )
        ax.axvline(when(lb.time), color="tab:orange", lw=1)
    colours = {"anomaly": "red", "overheat_predicted": "purple", "out_of_range": "brown"}
    shown: set[str] = set()
    for a in result.report["alerts"]:
        t = float(
            mdates.date2num(
                dt.datetime.strptime(a["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
            )
        )
        ax.axvline(
            t,
            color=colours.get(a["type"], "grey"),
            ls="--",
            lw=1,
            label=a["type"] if a["type"] not in shown else None,
        )
        shown.add(a["type"])
    lo, hi = times[0], times[-1]
    ax.set_xlim(lo, hi)
    ax.xaxis_date()
    r = result.report
    ax.set_title(
        f"{r['model']}: forecast +{r['horizon'] // 60000} min, mae {r['mae']:.3f} "
        f"vs persistence {r['persistence_mae']:.3f}"
    )
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
