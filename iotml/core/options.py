"""Click options generated from a settings class, so flags, variables and help cannot drift.

``settings_options(Cls)`` adds one ``--flag`` per field, with help that names the
``IOTML_*`` variable and the default. ``build_settings(Cls, kwargs)`` builds the settings
object: flags given on the command line win over the environment, which wins over defaults.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import click
from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from iotml.core.durations import duration_ms_field, format_duration_ms
from iotml.core.errors import ConfigError
from iotml.core.settings import ENV_PREFIX

S = TypeVar("S", bound=BaseSettings)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class OptionDoc:
    name: str
    flag: str
    env: str
    type: str
    default: str
    help: str
    secret: bool


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The inner type of ``X | None`` / ``Annotated[X, ...]``, and whether it is a list."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    if origin is list:
        return typing.get_args(annotation)[0], True
    return annotation, False


def _is_duration(field: FieldInfo) -> bool:
    return any(getattr(m, "func", None) is duration_ms_field for m in field.metadata)


def _default_text(field: FieldInfo) -> str:
    default = field.get_default(call_default_factory=True)
    if default is None:
        return ""
    if _is_duration(field) and isinstance(default, int):
        return format_duration_ms(default)
    if isinstance(default, SecretStr):
        return "(set)"
    if isinstance(default, list):
        return ",".join(str(x) for x in default)
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, Path):
        # the same text for every user (help, README reference): ~ for the home directory
        home = str(Path.home())
        text = str(default)
        return "~" + text[len(home) :] if text == home or text.startswith(home + "/") else text
    return str(default)


def _type_text(tp: Any, is_list: bool) -> str:
    if typing.get_origin(tp) is Literal:
        text = "|".join(str(a) for a in typing.get_args(tp))
    elif tp is SecretStr:
        text = "secret"
    elif tp is Path:
        text = "path"
    else:
        text = getattr(tp, "__name__", str(tp))
    return f"list of {text}" if is_list else text


def option_docs(cls: type[BaseSettings]) -> Iterator[OptionDoc]:
    """One entry per setting: flag, variable, type, default and help."""
    for name, field in cls.model_fields.items():
        tp, is_list = _unwrap(field.annotation)
        yield OptionDoc(
            name=name,
            flag="--" + name.replace("_", "-"),
            env=ENV_PREFIX + name.upper(),
            type="duration" if _is_duration(field) else _type_text(tp, is_list),
            default=_default_text(field),
            help=field.description or "",
            secret=tp is SecretStr,
        )


def settings_options(cls: type[BaseSettings]) -> Callable[[F], F]:
    """Decorator adding a click option per field of ``cls`` (values default to ``None`` so
    that unset flags fall through to the environment)."""

    def decorate(func: F) -> F:
        for doc in reversed(list(option_docs(cls))):
            field = cls.model_fields[doc.name]
            tp, is_list = _unwrap(field.annotation)
            shown = "" if doc.secret or not doc.default else f"; default: {doc.default}"
            help_text = f"{doc.help} [env: {doc.env}{shown}]"
            kwargs: dict[str, Any] = {"help": help_text, "default": None}
            if tp is bool:
                decl = [f"{doc.flag}/--no-{doc.flag[2:]}"]
            else:
                decl = [doc.flag]
                if typing.get_origin(tp) is Literal:
                    kwargs["type"] = click.Choice([str(a) for a in typing.get_args(tp)])
                kwargs["metavar"] = doc.type.upper().replace(" ", "_") if not is_list else "VALUE"
                if is_list:
                    kwargs["multiple"] = True
            func = click.option(*decl, doc.name, **kwargs)(func)
        return func

    return decorate


def build_settings(cls: type[S], values: dict[str, Any]) -> S:
    """Build ``cls`` from command-line values (``None``/empty meaning "not given") and the
    environment. Raises :class:`ConfigError` naming each bad setting and its variable."""
    given = {k: v for k, v in values.items() if k in cls.model_fields and v not in (None, ())}
    for key, value in given.items():
        if isinstance(value, tuple):
            given[key] = list(value)
    try:
        return cls(**given)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            where = f"--{loc.replace('_', '-')} / {ENV_PREFIX}{loc.upper()}" if loc else ""
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  {where}: {msg}" if where else f"  {msg}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None


def markdown_reference(title: str, cls: type[BaseSettings]) -> str:
    """A Markdown table of ``cls``'s settings (the README's configuration reference)."""
    rows = [f"### {title}", "", "| variable | flag | default | meaning |", "|---|---|---|---|"]
    for d in option_docs(cls):
        default = "" if d.secret else d.default
        rows.append(
            f"| `{d.env}` | `{d.flag}` | {('`' + default + '`') if default else ''} | "
            f"{d.help.replace('|', '/')} |"
        )
    return "\n".join(rows) + "\n"
