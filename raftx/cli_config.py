"""Configuration layers for the ``raftx`` commands: flags, environment, a TOML file.

Every long option ``--some-flag`` of every ``raftx`` command has an environment
mirror ``RAFTX_SOME_FLAG``, and ``raftx serve`` (any parser with a ``--config``
option) reads a TOML file whose keys are the flag names (``some-flag`` or
``some_flag``). The names are derived from the argparse parsers themselves
(`layered_parse`), so an option added to a parser is covered without more code.
Precedence, highest first: the command line, the environment, the file, the
parser's default.

Values: a flag's argument as on the command line (``RAFTX_LISTEN=10.0.0.1:7001``);
an option taking several values (``nargs``, ``action="append"``: ``--peer``,
``--endpoints``, ``--election-timeout-ms``) takes a comma-separated string or, in
the file, a TOML array; a switch (``--init``, ``--no-fsync``) takes ``1/true/yes/on``
(as if given) or ``0/false/no/off`` (as if not given; ``false`` of a ``--no-x``
switch means "x"). In the file, TOML numbers and booleans may stand for their text.
Unknown keys in the file are an error (a typo must not be ignored); unknown
``RAFTX_*`` variables are not (the build uses ``RAFTX_NO_EXTENSIONS`` and others).
``RAFTX_CONFIG`` names the file when ``--config`` is not given.

`layered_parse` also records where each option's value came from (``sources``:
``flag``, ``env``, ``file``, ``default``), which ``raftx serve --check-config`` prints.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from raftx.errors import ConfigError

__all__ = ["ENV_PREFIX", "Layered", "env_name", "layered_parse", "parse_args", "parse_bool", "read_config_file"]

ENV_PREFIX = "RAFTX_"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

#: argparse actions with no value of their own (no mirror).
_SKIPPED = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


def env_name(option: str) -> str:
    """``--some-flag`` → ``RAFTX_SOME_FLAG``."""
    return ENV_PREFIX + option.lstrip("-").replace("-", "_").upper()


def parse_bool(text: str, where: str) -> bool:
    """A switch's value from text (``1/true/yes/on``, ``0/false/no/off``)."""
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ConfigError(f"{where}: expected true or false (1/0, yes/no, on/off), not {text!r}")


class Layered:
    """What `layered_parse` returns: the namespace, each dest's source, the file read."""

    def __init__(self, args: argparse.Namespace, sources: dict[str, str], config_file: Path | None,
                 table: dict[str, Any]) -> None:
        self.args = args
        self.sources = sources
        self.config_file = config_file
        #: The whole TOML document (``{}`` without a file), for the caller's own tables.
        self.table = table


def _long_options(action: argparse.Action) -> list[str]:
    return [o for o in action.option_strings if o.startswith("--")]


def _is_switch(action: argparse.Action) -> bool:
    return action.nargs == 0


def _multi(action: argparse.Action) -> bool:
    return isinstance(action, argparse._AppendAction) or action.nargs in ("+", "*") or isinstance(action.nargs, int)


def _convert(parser: argparse.ArgumentParser, action: argparse.Action, option: str, raw: Any,
             where: str) -> Any:
    """The value ``raw`` (environment text or a TOML value) means for ``option``."""
    if _is_switch(action):
        on = raw if isinstance(raw, bool) else parse_bool(str(raw), where)
        if isinstance(action, argparse.BooleanOptionalAction):
            return on != option.startswith("--no-")
        const = action.const
        if isinstance(const, bool):
            return const if on else not const
        if isinstance(action, argparse._CountAction):
            return 1 if on else 0
        return const if on else action.default
    if _multi(action):
        if isinstance(raw, str):
            items: list[Any] = [t.strip() for t in raw.split(",") if t.strip()]
        elif isinstance(raw, list):
            items = list(raw)
        else:
            items = [raw]
        if isinstance(action.nargs, int) and len(items) != action.nargs:
            raise ConfigError(f"{where}: expected {action.nargs} values, got {len(items)}")
        if action.nargs == "+" and not items:
            raise ConfigError(f"{where}: expected at least one value")
        return [_one(parser, action, item, where) for item in items]
    if isinstance(raw, (list, dict)):
        raise ConfigError(f"{where}: expected one value, not {type(raw).__name__}")
    return _one(parser, action, raw, where)


def _one(parser: argparse.ArgumentParser, action: argparse.Action, raw: Any, where: str) -> Any:
    if isinstance(raw, (dict, list)):
        raise ConfigError(f"{where}: expected a value, not {type(raw).__name__}")
    text = str(raw).lower() if isinstance(raw, bool) else str(raw)
    try:
        value = parser._get_value(action, text)
    except (argparse.ArgumentError, argparse.ArgumentTypeError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if action.choices is not None and value not in action.choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, action.choices))}")
    return value


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and all its subcommand parsers, depth first."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found.extend(_parsers(sub))
    return found


def read_config_file(path: Path) -> dict[str, Any]:
    """The TOML file's table (`ConfigError` if unreadable or not TOML)."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"--config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid TOML: {exc}") from None


def _config_path(parser: argparse.ArgumentParser, argv: Sequence[str], env: Mapping[str, str]) -> Path | None:
    has = any("--config" in a.option_strings for a in parser._actions)
    if not has:
        return None
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(list(argv))
    if known.config is not None:
        return Path(known.config)
    text = env.get(env_name("--config"))
    return Path(text) if text else None


_UNSET = object()


class _UnsetList(list[Any]):
    """The marker default of an ``append`` option (argparse copies and extends it)."""


def layered_parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None,
                  env: Mapping[str, str] | None = None, *,
                  file_tables: Sequence[str] = ()) -> Layered:
    """Parse ``argv`` with ``parser`` after laying the environment and the config file
    under it (module docstring). Raises `ConfigError` for a bad environment or file
    value (naming the variable or key); bad flags exit as argparse does.

    ``file_tables``: top-level TOML tables the caller reads itself (e.g. ``raft``);
    any other key that names no option is an error.
    """
    argv = list(argv) if argv is not None else []
    env = os.environ if env is None else env
    config_file = _config_path(parser, argv, env)
    table: dict[str, Any] = read_config_file(config_file) if config_file is not None else {}
    file_values = {k.replace("_", "-"): v for k, v in table.items() if k not in file_tables}
    sources: dict[str, str] = {}
    used: set[str] = set()
    for p in _parsers(parser):
        for action in p._actions:
            if isinstance(action, _SKIPPED) or not action.option_strings or action.dest == "config":
                continue
            layered: Any = _UNSET
            source = "default"
            for option in _long_options(action):
                key = option[2:]
                if p is parser and key in file_values:
                    used.add(key)
                    layered = _convert(p, action, option, file_values[key], f"{config_file}: {key}")
                    source = "file"
            for option in _long_options(action):
                name = env_name(option)
                if name in env:
                    layered = _convert(p, action, option, env[name], name)
                    source = "env"
            if layered is not _UNSET:
                action.default = layered
                action.required = False
            if source != "default" or action.dest not in sources:
                sources[action.dest] = source
    unknown = sorted(set(file_values) - used)
    if unknown:
        raise ConfigError(f"{config_file}: unknown keys {', '.join(unknown)} (keys are the flags of "
                          f"{parser.prog}, without the dashes)")
    args = parser.parse_args(argv)
    for dest in _given_on_command_line(parser, argv):
        sources[dest] = "flag"
    sources.pop("check_config", None)
    return Layered(args, {d: s for d, s in sources.items() if hasattr(args, d)}, config_file, table)


def _given_on_command_line(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The dests that ``argv`` itself sets: parse it again with every default (and
    requirement) replaced by a marker; whatever is not the marker came from a flag."""
    saved: list[tuple[argparse.Action, Any, bool]] = []
    for p in _parsers(parser):
        for action in p._actions:
            if action.option_strings and not isinstance(action, _SKIPPED):
                saved.append((action, action.default, action.required))
                action.required = False
                action.default = _UnsetList() if isinstance(action, argparse._AppendAction) else _UNSET
    try:
        ns = parser.parse_args(argv)
    finally:
        for action, default, required in saved:
            action.default, action.required = default, required
    return {k for k, v in vars(ns).items() if v is not _UNSET and not (isinstance(v, _UnsetList) and not v)}


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """`layered_parse`'s namespace; a bad environment or file value is a usage error
    (``parser.error``: the message and exit status 2), as a bad flag is."""
    try:
        return layered_parse(parser, sys.argv[1:] if argv is None else argv).args
    except ConfigError as exc:
        parser.error(str(exc))
