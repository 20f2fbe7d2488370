"""``iotml models list | show | promote``: inspect the registry, roll forward or back."""

from __future__ import annotations

import json
from typing import Any

import click

from iotml.core.options import build_settings, settings_options
from models.registry import Registry, validation_skill
from models.settings import RegistrySettings


@click.group("models")
def models_group() -> None:
    """Inspect the model registry and roll versions forward or back."""


@models_group.command("list")
@settings_options(RegistrySettings)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_models(as_json: bool, **kwargs: Any) -> None:
    """Model names, their versions and which one LATEST points at (every name, unless
    --model-name or IOTML_MODEL_NAME picks one)."""
    s = build_settings(RegistrySettings, kwargs)
    reg = Registry(s.model_registry)
    only = kwargs.get("model_name") or None
    rows = []
    for name in reg.names():
        if only is not None and name != only:
            continue
        latest = reg.latest(name)
        for version in reg.versions(name):
            m = reg.manifest(name, version)
            rows.append(
                {
                    "name": name,
                    "version": version,
                    "latest": version == latest,
                    "created": m.get("created"),
                    "val_mae": (m.get("validation") or {}).get("val_mae"),
                    "val_skill": validation_skill(m),
                    "source": (m.get("training") or {}).get("source"),
                }
            )
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo(f"no models in {s.model_registry}")
    for r in rows:
        mark = "*" if r["latest"] else " "
        mae = "" if r["val_mae"] is None else f"val_mae {r['val_mae']:.4f}"
        skill = "" if r["val_skill"] is None else f"skill {r['val_skill']:.3f}"
        click.echo(
            f"{mark} {r['name']} {r['version']}  {r['created']}  {mae}  {skill}  {r['source']}"
        )


@models_group.command("show")
@settings_options(RegistrySettings)
@click.argument("version", required=False)
@click.option(
    "--decisions",
    "n_decisions",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="How many of the latest retrain decisions to include.",
)
def show_model(version: str | None, n_decisions: int, **kwargs: Any) -> None:
    """Print, as one JSON object, the manifest of a version of --model-name (default:
    LATEST) with its validation skill, and the model's latest retrain decisions (newest
    first: data range, champion and challenger scores, promoted or not and why)."""
    s = build_settings(RegistrySettings, kwargs)
    reg = Registry(s.model_registry)
    manifest = reg.manifest(s.model_name, version)
    shown = {
        "manifest": manifest,
        "validation_skill": validation_skill(manifest),
        "latest": reg.latest(s.model_name),
        "decisions": reg.decisions(s.model_name, limit=n_decisions),
    }
    click.echo(json.dumps(shown, indent=2, sort_keys=True))


@models_group.command("promote")
@settings_options(RegistrySettings)
@click.argument("version")
@click.option("--check/--no-check", default=True, help="Load the model before promoting it.")
def promote_model(version: str, check: bool, **kwargs: Any) -> None:
    """Point LATEST of --model-name at VERSION (roll forward or back); running processors
    follow."""
    s = build_settings(RegistrySettings, kwargs)
    reg = Registry(s.model_registry)
    if check:
        reg.load(s.model_name, version)
    previous = reg.latest(s.model_name)
    reg.promote(s.model_name, version)
    click.echo(f"{s.model_name}: LATEST {previous} -> {version}")
