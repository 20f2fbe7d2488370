"""The image builds' extra CA certificates: what the host trusts and pip in the base image
does not (a TLS-intercepting proxy's CA), passed as the EXTRA_CA_CERTS build argument."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml


class NoBaseImage(Exception):
    """The Dockerfile names no base image."""


_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def extra_certs(bundle: Path, base_image: str) -> str:
    """The certificates of ``bundle`` that pip in ``base_image`` does not trust already
    (a TLS-intercepting proxy's CA, say): what the image builds must be given."""
    script = "from pip._vendor import certifi; print(open(certifi.where()).read())"
    trusted = subprocess.run(
        ["podman", "run", "--rm", "--entrypoint", "python3", base_image, "-c", script],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    known = {c.replace("\n", "") for c in _PEM.findall(trusted)}
    return "\n".join(
        c for c in _PEM.findall(bundle.read_text()) if c.replace("\n", "") not in known
    )


def base_image(dockerfile: Path) -> str:
    match = re.search(r"^FROM\s+(\S+)", dockerfile.read_text(), re.M)
    if match is None:
        raise NoBaseImage(f"{dockerfile}: no FROM line")
    return match.group(1)


def ca_override(compose: dict[str, Any], pem: str, tmp: Path) -> Path:
    """A compose file that passes ``pem`` as the EXTRA_CA_CERTS build argument."""
    services = {
        name: {"build": {"args": {"EXTRA_CA_CERTS": pem}}}
        for name, svc in compose["services"].items()
        if "build" in svc
    }
    path = tmp / "ca-override.yml"
    path.write_text(yaml.safe_dump({"services": services}))
    return path
