"""One source for each setting: a run kind's config dataclass (eval, train, bench) declares every
setting once, with its default, help text and bounds, through `setting()`. The CLI flags, the
pipeline's TOML tables and the app's launch form are derived from it, so their defaults cannot
drift apart, and a TOML key the dataclass does not know is an error naming the key.

A field's metadata says where it appears:
  cli    its flag (--name-with-dashes unless `flag` says otherwise); False: the command adds it by hand
  table  which pipeline table holds it ("pipeline": shared by both sides, "side": [candidate] and
         [baseline] each, "own": the run kind's own table); None: not settable from TOML
  form   the launch form's label; None: not on the form
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from core.base.errors import UsageError


def setting(default: Any = dataclasses.MISSING, help: str = "", *, flag: str | None = None, cli: bool = True,
            table: str | None = "own", form: str | None = None, choices: tuple | None = None,
            minimum: float | None = None, metavar: str | None = None, factory=None):
    meta = {"help": help, "flag": flag, "cli": cli, "table": table, "form": form, "choices": choices,
            "minimum": minimum, "metavar": metavar}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.metadata]


def _type(cls, f: dataclasses.Field):
    """(base type, optional?) of a field: int | None -> (int, True); tuple[int, ...] -> (tuple, False)."""
    hint = typing.get_type_hints(cls)[f.name]
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    return (typing.get_origin(hint) or hint), optional


def default_of(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def defaults(cls, where: str = "cli") -> dict:
    """name -> default of every setting shown in `where` (cli | toml | form)."""
    keep = {"cli": lambda m: m["cli"], "toml": lambda m: m["table"], "form": lambda m: m["form"]}[where]
    return {f.name: default_of(f) for f in fields(cls) if keep(f.metadata) and default_of(f) is not dataclasses.MISSING}


def help_of(cls, name: str) -> str:
    return _field(cls, name).metadata["help"]


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


def parse_ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(k) for k in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes numbers separated by commas, e.g. 1,10; got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("every value must be >= 1")
    return values


def add_arguments(parser, cls, skip=()) -> None:
    """One flag per setting of cls whose cli is on, with its default and help."""
    for f in fields(cls):
        m = f.metadata
        if not m["cli"] or f.name in skip:
            continue
        base, _ = _type(cls, f)
        default = default_of(f)
        hidden = default is None or default is False or default is dataclasses.MISSING
        shown = "" if hidden else f" (default {_show(default)})"
        kwargs = {"dest": f.name, "help": m["help"] + shown}
        if default is dataclasses.MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
        if base is bool:
            kwargs["action"] = "store_true"
        elif base is tuple:
            kwargs["type"] = parse_ints
        elif base is list:
            kwargs.update(action="append", default=None)
        else:
            kwargs["type"] = base
        if m["choices"]:
            kwargs["choices"] = m["choices"]
        if base is not bool and not m["choices"]:
            kwargs["metavar"] = m["metavar"] or flag_of(f).lstrip("-").upper().replace("-", "_")
        parser.add_argument(flag_of(f), **kwargs)


def _show(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def from_args(cls, args: argparse.Namespace, **fixed):
    """The config of a parsed command line (flags the command added by hand come in `fixed`)."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if f.metadata["cli"] and hasattr(args, f.name)}
    values = {k: v for k, v in values.items() if v is not None or default_of(_field(cls, k)) is None}
    return cls(**{**values, **fixed})


def _field(cls, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def table_keys(cls, table: str = "own") -> list[str]:
    return [f.name for f in fields(cls) if f.metadata["table"] == table]


def coerce(cls, name: str, value, where: str):
    """A TOML value checked against the field's type: ints stay ints, lists become tuples where asked."""
    f = _field(cls, name)
    base, optional = _type(cls, f)
    bad = UsageError(f"{where}: {name} = {value!r} should be {'nothing or ' if optional else ''}"
                     f"{getattr(base, '__name__', base)}")
    if value is None and optional:
        return None
    if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = float(value)
    elif base is tuple and isinstance(value, list) and all(isinstance(v, int) for v in value):
        value = tuple(value)
    elif base is list and isinstance(value, list):
        value = list(value)
    elif not isinstance(value, base) or (base is int and isinstance(value, bool)):
        raise bad
    if f.metadata["choices"] and value not in f.metadata["choices"]:
        raise UsageError(f"{where}: {name} = {value!r}; choose one of {', '.join(map(str, f.metadata['choices']))}")
    return value


def check_table(cls, table: dict, where: str, allowed: list[str], extra: tuple[str, ...] = ()) -> dict:
    """A pipeline table's values for cls: an unknown key is an error that names it and the known ones."""
    unknown = sorted(set(table) - set(allowed) - set(extra))
    if unknown:
        raise UsageError(f"unknown key {unknown[0]!r} in {where}; known: {', '.join(sorted([*allowed, *extra]))}")
    return {k: coerce(cls, k, v, where) for k, v in table.items() if k in allowed}


def validate(cfg) -> None:
    """Bounds of every setting, named by its flag: called by each config's __post_init__."""
    for f in fields(type(cfg)):
        low, value = f.metadata["minimum"], getattr(cfg, f.name)
        if low is not None and value is not None and value < low:
            raise UsageError(f"{f.name} (flag {flag_of(f)}) must be >= {low:g}, got {value}")


def to_argv(cfg, skip=()) -> list[str]:
    """The command-line flags that reproduce cfg (settings at their default are left out)."""
    argv: list[str] = []
    for f in fields(type(cfg)):
        if not f.metadata["cli"] or f.name in skip:
            continue
        value = getattr(cfg, f.name)
        if value == default_of(f) or value is None:
            continue
        if isinstance(value, bool):
            argv.append(flag_of(f))
        elif isinstance(value, list):
            argv += [x for v in value for x in (flag_of(f), str(v))]
        else:
            argv += [flag_of(f), _show(value)]
    return argv
