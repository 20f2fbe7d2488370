"""What the container engine and Compose say about the project: published ports, image
sizes, its running containers, and anything of it left behind."""

from __future__ import annotations

import json
import socket
import subprocess
from typing import Any

from deploy.compose_test.compose import Compose


def published_ports(compose: dict[str, Any]) -> dict[int, str]:
    ports = {}
    for name, svc in compose["services"].items():
        for spec in svc.get("ports", []):
            host = str(spec).split(":")[-2] if ":" in str(spec) else None
            if host:
                ports[int(host)] = name
    return ports


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def image_sizes(compose: dict[str, Any]) -> dict[str, str]:
    images = sorted({str(svc["image"]) for svc in compose["services"].values() if "image" in svc})
    sizes = {}
    for image in images:
        out = subprocess.run(
            ["podman", "image", "inspect", "--format", "{{.Size}}", image],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        sizes[image] = f"{int(out) / 1e6:,.0f} MB" if out.isdigit() else "?"
    return sizes


def leftovers(project: str) -> list[str]:
    label = f"label=com.docker.compose.project={project}"
    found = []
    for kind in ("container", "network", "volume"):
        cmd = ["podman", kind, "ls", "--quiet", "--filter", label]
        if kind == "container":
            cmd.insert(3, "--all")
        ids = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.split()
        found += [f"{kind} {i[:12]}" for i in ids]
    return found


def running_ids(compose: Compose) -> dict[str, str]:
    """Service -> container ID of the running single-container services."""
    ids: dict[str, list[str]] = {}
    for c in ps(compose):
        if c.get("State") == "running":
            ids.setdefault(c["Service"], []).append(c["ID"])
    return {name: cids[0] for name, cids in ids.items() if len(cids) == 1}


def ps(compose: Compose) -> list[dict[str, Any]]:
    out = compose.run("ps", "--all", "--format", "json", timeout=60, capture=True).stdout
    out = out.strip()
    if out.startswith("["):
        return list(json.loads(out))
    return [json.loads(line) for line in out.splitlines() if line.strip()]
