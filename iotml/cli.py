"""The ``iotml`` command line: one subcommand per service.

The application layer: subcommands live in their packages (``bridge.cli``,
``processor.cli``, ``models.cli``...) and are imported only when used, so ``iotml bridge``
never imports TensorFlow.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from iotml.core.errors import ConfigError, IotmlError
from iotml.core.logs import quiet_tensorflow


def _stack() -> click.Command:
    from iotml.stack.cli import stack

    return stack


def _topics() -> click.Command:
    from iotml.topics_cli import topics

    return topics


def _bridge() -> click.Command:
    from bridge.cli import bridge

    return bridge


def _simulate() -> click.Command:
    from bridge.simulate_cli import simulate

    return simulate


def _egress() -> click.Command:
    from bridge.egress.cli import egress

    return egress


def _dashboard() -> click.Command:
    from dashboard.cli import dashboard

    return dashboard


def _processor() -> click.Command:
    from processor.cli import processor

    return processor


def _train() -> click.Command:
    from models.cli import train

    return train


def _evaluate() -> click.Command:
    from models.cli import evaluate

    return evaluate


def _models() -> click.Command:
    from models.cli import models_group

    return models_group


def _batch() -> click.Command:
    from models.cli import batch

    return batch


def _archive() -> click.Command:
    from models.cli import archive

    return archive


def _retrain() -> click.Command:
    from models.cli import retrain

    return retrain


def _demo() -> click.Command:
    from iotml.demo import demo

    return demo


def _config_reference() -> click.Command:
    from iotml.topics_cli import config_reference

    return config_reference


# name -> loader (imports the command's package only when used); the order is `--help`'s.
COMMANDS: dict[str, Callable[[], click.Command]] = {
    "stack": _stack,
    "topics": _topics,
    "bridge": _bridge,
    "simulate": _simulate,
    "egress": _egress,
    "processor": _processor,
    "dashboard": _dashboard,
    "train": _train,
    "evaluate": _evaluate,
    "models": _models,
    "batch": _batch,
    "archive": _archive,
    "retrain": _retrain,
    "demo": _demo,
    "config-reference": _config_reference,
}

# The top-level package of each service command (absent from slim installs).
PACKAGES = ("bridge", "processor", "models", "dashboard")


# The extra that provides each command's dependencies (for a clear error in slim installs).
EXTRAS: dict[str, str] = {
    "bridge": "bridge",
    "simulate": "bridge",
    "egress": "bridge",
    "processor": "processor",
    "dashboard": "dashboard",
    "train": "models",
    "evaluate": "models",
    "models": "models",
    "batch": "models",
    "archive": "models",
    "retrain": "models",
    "demo": "all",
}


def _unavailable(name: str, missing: str) -> click.Command:
    """A stand-in for a command whose dependencies are not installed."""
    extra = EXTRAS.get(name, "all")

    def fail() -> None:
        raise click.ClickException(
            f"`iotml {name}` needs the '{extra}' extra (missing module {missing!r}): "
            f'pip install "iotml[{extra}]"'
        )

    return click.Command(name, callback=fail, help=f'(not installed: pip install "iotml[{extra}]")')


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._load(name) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    def _load(self, name: str) -> click.Command | None:
        loader = COMMANDS.get(name)
        if loader is None:
            return None
        try:
            return loader()
        except ModuleNotFoundError as exc:
            if exc.name in PACKAGES:
                return None  # not part of this installation
            return _unavailable(name, exc.name or "?")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="iotml")
def cli() -> None:
    """iotml: real-time predictive modelling for IoT fleets.

    Sensors publish over MQTT; `iotml bridge` republishes them into Kafka; `iotml processor`
    windows them per device, runs the Keras model and writes predictions and alerts;
    `iotml train`/`evaluate`/`batch` are the batch path; `iotml retrain` closes the model
    loop (drift, champion and challenger). Every option can also be set by
    the IOTML_* environment variable named in its help (flag > environment > default).
    """


def main(argv: list[str] | None = None) -> Any:
    quiet_tensorflow()  # before any command can import TensorFlow
    try:
        return cli.main(args=argv, prog_name="iotml", standalone_mode=True)
    except ConfigError as exc:
        click.echo(f"iotml: {exc}", err=True)
        sys.exit(2)
    except IotmlError as exc:
        click.echo(f"iotml: error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
