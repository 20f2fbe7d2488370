"""The ``iotml`` command line: one subcommand per service.

Subcommands live in their packages (``bridge.cli``, ``processor.cli``, ``models.cli``...)
and are imported only when used, so ``iotml bridge`` never imports TensorFlow.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from iotml.core.errors import ConfigError, IotmlError

# name -> "module:attribute"; the order is the order of `iotml --help`.
COMMANDS: dict[str, str] = {
    "stack": "iotml.stack.cli:stack",
    "topics": "iotml.topics_cli:topics",
    "bridge": "bridge.cli:bridge",
    "simulate": "bridge.simulate_cli:simulate",
    "processor": "processor.cli:processor",
    "train": "models.cli:train",
    "evaluate": "models.cli:evaluate",
    "models": "models.cli:models_group",
    "batch": "models.cli:batch",
    "archive": "models.cli:archive",
    "demo": "iotml.demo:demo",
    "config-reference": "iotml.topics_cli:config_reference",
}


# The extra that provides each command's dependencies (for a clear error in slim installs).
EXTRAS: dict[str, str] = {
    "bridge": "bridge",
    "simulate": "bridge",
    "processor": "processor",
    "train": "models",
    "evaluate": "models",
    "models": "models",
    "batch": "models",
    "archive": "models",
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
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == module_name or module_name.startswith(exc.name + ".")):
                return None  # not part of this installation
            return _unavailable(name, exc.name or "?")
        command: click.Command = getattr(module, attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="iotml")
def cli() -> None:
    """iotml: real-time predictive modelling for IoT fleets.

    Sensors publish over MQTT; `iotml bridge` republishes them into Kafka; `iotml processor`
    windows them per device, runs the Keras model and writes predictions and alerts;
    `iotml train`/`evaluate`/`batch` are the batch path. Every option can also be set by
    the IOTML_* environment variable named in its help (flag > environment > default).
    """


def main(argv: list[str] | None = None) -> Any:
    # TensorFlow's C++ start-up chatter (oneDNN notes, absl warnings, tf.data graph
    # notices) is noise for users; an explicit setting still wins. oneDNN's custom ops are
    # off because they only speed up large matrices (ours are tiny) and make results vary
    # with the CPU.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
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
