"""Static checks of a compose file against the iotml CLI, before any container starts.

Every iotml service's command must be one the CLI accepts, and every ``IOTML_*`` variable
it sets must be a setting of that command: a misspelt variable would otherwise be ignored
without a word (the service runs on its default) and show up, if at all, much later.

    python -m deploy.compose_test.check [docker-compose.yml]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml

from iotml.cli import cli
from iotml.core.settings import ENV_PREFIX


def load(path: Path) -> dict[str, Any]:
    compose = yaml.safe_load(path.read_text())
    if not isinstance(compose, dict) or not isinstance(compose.get("services"), dict):
        raise ValueError(f"{path}: not a compose file (no services)")
    return compose


def iotml_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the iotml CLI: an iotml image with the image's entrypoint,
    ``iotml`` (the Dask scheduler and workers run ``dask`` from the batch image)."""
    return {
        name: svc
        for name, svc in compose["services"].items()
        if str(svc.get("image", "")).startswith("iotml") and _runs_iotml(svc)
    }


def images(compose: dict[str, Any]) -> set[str]:
    """The iotml images the services run, whatever their entrypoint."""
    return {
        str(svc["image"])
        for svc in compose["services"].values()
        if str(svc.get("image", "")).startswith("iotml")
    }


def _runs_iotml(svc: dict[str, Any]) -> bool:
    entrypoint = svc.get("entrypoint")
    if entrypoint is None:
        return True
    first = entrypoint.split()[0] if isinstance(entrypoint, str) else str(entrypoint[0])
    return first.rsplit("/", 1)[-1] == "iotml"


def resolve(args: list[str]) -> tuple[click.Command, list[str]]:
    """The iotml (sub)command that ``args`` names, and the rest of the arguments."""
    command: click.Command = cli
    ctx = click.Context(cli)
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        sub = command.get_command(ctx, args[0])
        if sub is None:
            raise click.UsageError(f"iotml has no command {args[0]!r}")
        command, args = sub, args[1:]
    return command, args


def settings_of(command: click.Command) -> set[str]:
    """The environment variables ``command`` reads: one per option."""
    return {ENV_PREFIX + p.name.upper() for p in command.params if p.name}


def service_problems(name: str, svc: dict[str, Any]) -> list[str]:
    args = [str(a) for a in svc.get("command", [])]
    try:
        command, rest = resolve(args)
        command.make_context(name, list(rest))
    except click.UsageError as exc:
        return [f"service {name}: `iotml {' '.join(args)}` is rejected by the CLI: {exc}"]
    environment = svc.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    accepted = settings_of(command)
    path = " ".join(args[: len(args) - len(rest)])
    return [
        f"service {name}: {var} is not a setting of `iotml {path}`"
        for var in environment
        if var.startswith(ENV_PREFIX) and var not in accepted
    ]


def problems(compose: dict[str, Any]) -> list[str]:
    """Every service whose command or ``IOTML_*`` variables the CLI would not accept."""
    found: list[str] = []
    for name, svc in iotml_services(compose).items():
        found += service_problems(name, svc)
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "docker-compose.yml")
    found = problems(load(path))
    for problem in found:
        print(f"compose-test: {path}: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
