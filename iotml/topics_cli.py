"""``iotml topics`` and ``iotml config-reference``."""

from __future__ import annotations

from typing import Any

import click

from iotml.core.logs import setup_logging
from iotml.core.options import build_settings, settings_options
from iotml.core.settings import KafkaSettings
from iotml.core.topics import TopicsSettings, ensure_topics, topic_specs


@click.group()
def topics() -> None:
    """Manage iotml's Kafka topics (names, partitions, retention from one spec)."""


@topics.command("ensure")
@settings_options(TopicsSettings)
def ensure(**kwargs: Any) -> None:
    """Create the topics of the spec that are missing. Idempotent: existing topics are kept
    and a partition count different from the spec is reported, not changed."""
    settings = build_settings(TopicsSettings, kwargs)
    setup_logging(settings.log_level)
    specs = topic_specs(settings)
    report = ensure_topics(settings.kafka_config(), specs)
    for spec in specs:
        state = "created" if spec.name in report.created else "exists"
        click.echo(f"{spec.name:<24} {spec.partitions:>3} partitions  {state}")
    for name, why in report.mismatched.items():
        click.echo(f"warning: {name} {why}", err=True)


@topics.command("list")
@settings_options(KafkaSettings)
def list_topics(**kwargs: Any) -> None:
    """List the topics on the cluster with their partition counts."""
    from iotml.core.kafka_connect import cluster_metadata

    settings = build_settings(KafkaSettings, kwargs)
    _, md = cluster_metadata(settings.kafka_config(), timeout=15)
    for name in sorted(md.topics):
        if not name.startswith("__"):
            click.echo(f"{name:<40} {len(md.topics[name].partitions):>3} partitions")


@click.command("config-reference", hidden=True)
@click.option("--write-readme", is_flag=True, help="Rewrite the reference inside README.md.")
def config_reference(write_readme: bool) -> None:
    """Print the configuration reference (Markdown) generated from every service's settings."""
    from iotml.reference import render_reference, write_readme_reference

    if write_readme:
        click.echo(f"updated {write_readme_reference()}")
    else:
        click.echo(render_reference(), nl=False)
