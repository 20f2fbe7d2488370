"""What the compose test checks of the batch path: the archive and the ``batch`` profile.

The README's one line, ``docker compose --profile batch run --rm replay``, starts the Dask
scheduler and two workers and replays the Parquet archive that the ``archive`` service
wrote to its volume since ``up``. Checked:

* the replay's summary (stdout) counts readings and predictions, and the Dask dashboard
  link it prints (stderr) is the scheduler's port published on the host, and answers;
* in a worker's container: the predictions Parquet under ``/archive/batch`` holds as many
  rows as the summary says (more than none), the scheduler has two workers with a 1 GiB
  limit each, and neither imported TensorFlow (the image has none to import);
* the engine gave each worker's container a 1 GiB memory limit.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Callable
from typing import Any

from deploy.compose_test.service_checks import Wrong

#: ``compose <args...>`` with the batch profile -> the finished process (output captured).
Compose = Callable[..., subprocess.CompletedProcess[str]]

GIB = 1 << 30
WORKERS = 2
SCHEDULER = "tcp://dask-scheduler:8786"
OUTPUT = "/archive/batch"
DASHBOARD = "http://127.0.0.1:8788/"  # where docker-compose.yml publishes the scheduler's
_LINK = re.compile(r"Dask dashboard: (\S+)")

# Run in a worker's container: what the workers wrote, and what the scheduler knows.
_PROBE = f"""
import importlib.util, json, sys
import pyarrow.dataset as ds
from distributed import Client
rows = ds.dataset("{OUTPUT}/predictions", format="parquet", partitioning="hive").count_rows()
with Client("{SCHEDULER}", timeout=30) as client:
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    limits = sorted(w["memory_limit"] for w in workers)
    tf = sorted(client.run(lambda: "tensorflow" in sys.modules).values())
print(json.dumps({{"rows": rows, "limits": limits, "tf_loaded": tf,
                  "tf_installed": importlib.util.find_spec("tensorflow") is not None}}))
"""


def summary_of(stdout: str) -> dict[str, Any]:
    """The replay's summary: the last line of its standard output that is a JSON object."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise Wrong(f"the replay printed no summary: {stdout[-500:]!r}")


def check_replay(compose: Compose, timeout: float = 420) -> dict[str, str]:
    """Run the README's replay and check its summary and dashboard link."""
    proc = compose("run", "--rm", "-T", "replay", timeout=timeout, capture=True)
    summary = summary_of(proc.stdout)
    if not summary.get("readings") or not summary.get("predictions"):
        raise Wrong(f"the replay of the archive found nothing to predict: {summary}")
    match = _LINK.search(proc.stderr)
    if match is None:
        raise Wrong(f"the replay printed no Dask dashboard link: {proc.stderr[-800:]!r}")
    link = match.group(1)
    if not link.startswith(DASHBOARD):
        raise Wrong(f"dashboard link {link} is not the port the scheduler publishes")
    try:
        with urllib.request.urlopen(link, timeout=10) as response:
            status = response.status
    except OSError as exc:  # URLError and HTTPError are OSErrors
        raise Wrong(f"the Dask dashboard at {link}: {exc}") from exc
    if status != 200:
        raise Wrong(f"the Dask dashboard at {link} answered {status}")
    return {
        "batch replay": f"{summary['readings']} readings, {summary['predictions']} "
        f"predictions, {summary['alerts']} alerts",
        "dask dashboard": f"{link} (200)",
        "_predictions": str(summary["predictions"]),
    }


def check_outputs(compose: Compose, predictions: int) -> dict[str, str]:
    """Check what the workers wrote and the cluster they form, from a worker's container."""
    proc = compose(
        "exec", "-T", "--index", "1", "dask-worker", "python", "-c", _PROBE,
        timeout=120, capture=True,
    )  # fmt: skip
    found = summary_of(proc.stdout)
    if found["rows"] != predictions or not predictions:
        raise Wrong(f"{OUTPUT}/predictions holds {found['rows']} rows, the summary {predictions}")
    if found["limits"] != [GIB] * WORKERS:
        raise Wrong(f"the scheduler's workers have memory limits {found['limits']}")
    if any(found["tf_loaded"]) or found["tf_installed"]:
        raise Wrong(f"TensorFlow in the batch image or its workers: {found}")
    return {"batch outputs": f"{found['rows']} prediction rows in {OUTPUT}/predictions"}


def container_limits(project: str, service: str = "dask-worker") -> list[int]:
    """The memory limit (bytes) the engine gave each container of ``service``."""
    ids = subprocess.run(
        [
            *("podman", "ps", "--quiet", "--filter"),
            f"label=com.docker.compose.project={project}",
            *("--filter", f"label=com.docker.compose.service={service}"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not ids:
        return []
    out = subprocess.run(
        ["podman", "inspect", "--format", "{{.HostConfig.Memory}}", *ids],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(int(v) for v in out)


def check_batch(compose: Compose, project: str) -> dict[str, str]:
    """The replay, its outputs and the workers' limits; figures for the report."""
    figures = check_replay(compose)
    predictions = int(figures.pop("_predictions"))
    figures.update(check_outputs(compose, predictions))
    limits = container_limits(project)
    if limits != [GIB] * WORKERS:
        raise Wrong(f"dask-worker containers have memory limits {limits}, not 2 x 1 GiB")
    figures["dask workers"] = f"{WORKERS}, 1 GiB each (Dask and the container)"
    return figures
