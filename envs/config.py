"""The one configuration loader: TOML (or a mapping) into frozen dataclasses, validated.

Fields declare their allowed values with :func:`setting`; the loader rejects unknown keys,
missing keys, wrong types and out-of-range values with an error that names the file, the key
(dotted, with list indices) and what is allowed::

    @dataclass(frozen=True)
    class Pump:
        flow: float = setting(1.0, low=0.0, high=10.0, doc="m3/h")
        mode: str = setting("auto", choices=("auto", "manual"))

    pump = load_toml(Pump, "pump.toml")

Supported field types: bool, int, float, str, nested dataclasses, ``tuple[X, ...]`` of those,
and ``dict[str, float]``.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or mapping is not valid; the message names file, key and fix."""


def setting(
    default: Any = dataclasses.MISSING,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple | None = None,
    doc: str = "",
) -> Any:
    """A dataclass field with validation metadata (``low``/``high`` inclusive bounds)."""
    metadata = {"low": low, "high": high, "choices": choices, "doc": doc}
    if isinstance(default, list | dict):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _describe(kind: Any) -> str:
    if kind is float:
        return "a number"
    if kind is int:
        return "a whole number"
    if kind is bool:
        return "true or false"
    if kind is str:
        return "a string"
    if dataclasses.is_dataclass(kind):
        return "a table"
    return str(kind)


def _convert(kind: Any, value: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if value is None:
            return None
        return _convert(options[0], value, key, source)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: '{key}' must be a table, not {value!r}")
        return _build(kind, value, source, key)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        if not isinstance(value, list | tuple):
            raise ConfigError(
                f"{source}: '{key}' must be a list of {_describe(item)}, not {value!r}"
            )
        return tuple(_convert(item, v, f"{key}[{i}]", source) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: '{key}' must be a table of name = number")
        return {str(k): _convert(float, v, f"{key}.{k}", source) for k, v in value.items()}
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: '{key}' must be true or false, not {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: '{key}' must be a whole number, not {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: '{key}' must be a number, not {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{source}: '{key}' must be finite, not {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: '{key}' must be a string, not {value!r}")
        return value
    raise TypeError(f"unsupported configuration type {kind!r} for '{key}'")


def _check(field: dataclasses.Field, value: Any, key: str, source: str) -> None:
    low, high, choices = (field.metadata.get(name) for name in ("low", "high", "choices"))
    values = value if isinstance(value, tuple) else (value,)
    for item in values:
        if choices is not None and item not in choices:
            raise ConfigError(f"{source}: '{key}' = {item!r} is not one of {list(choices)}")
        numeric = isinstance(item, int | float) and not isinstance(item, bool)
        if numeric and ((low is not None and item < low) or (high is not None and item > high)):
            raise ConfigError(
                f"{source}: '{key}' = {item!r} is outside the allowed range [{low}, {high}]"
            )


def _build(cls: type[T], data: Mapping[str, Any], source: str, prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        where = f"'{prefix}.{unknown[0]}'" if prefix else f"'{unknown[0]}'"
        raise ConfigError(
            f"{source}: unknown key {where}; allowed keys here: {', '.join(sorted(known))}"
        )
    values = {}
    for name, field in known.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in data:
            if (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                raise ConfigError(f"{source}: missing key '{key}' ({_describe(hints[name])})")
            continue
        value = _convert(hints[name], data[name], key, source)
        _check(field, value, key, source)
        values[name] = value
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:
        where = f" in '{prefix}'" if prefix else ""
        raise ConfigError(f"{source}{where}: {error}") from error


def from_mapping(cls: type[T], data: Mapping[str, Any], *, source: str = "<config>") -> T:
    """Build and validate ``cls`` from a mapping (e.g. parsed TOML)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a table of settings, not {type(data).__name__}")
    return _build(cls, data, source)


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a missing file or bad TOML is a :class:`ConfigError` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error


def load_toml(cls: type[T], path: str | Path) -> T:
    """Read a TOML file into ``cls``; every error names the file."""
    return from_mapping(cls, read_toml(path), source=str(path))


def merge_tables(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``overrides``, nested tables merged key by key (a list or a value
    in ``overrides`` replaces the one in ``base``)."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


def given_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options a user gave: ``None`` (an option not given on the command line) is left out,
    and so is a nested table with nothing given in it. TOML has no null, so ``None`` never
    means a value."""
    given: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, Mapping):
            value = given_options(value) or None
        if value is not None:
            given[key] = value
    return given


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
) -> T:
    """The one way a script builds its configuration: ``cls``'s defaults, then ``base`` (a
    caller's defaults), then the TOML file at ``path`` (optional), then ``overrides`` (the
    command-line options as a nested mapping; ``None`` marks an option not given and is left
    out, see :func:`given_options`), validated together. Errors name the file, or the command
    line, and the key."""
    overrides = given_options(overrides or {})
    data: dict[str, Any] = dict(base or {})
    source = "command line"
    if path is not None:
        data = merge_tables(data, read_toml(path))
        source = f"{path} (with command-line options)" if overrides else str(path)
    return from_mapping(cls, merge_tables(data, overrides), source=source)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as plain TOML-ready data (tuples as lists; ``None`` values left out,
    since TOML has no null)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {
                f.name: plain(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None
            }
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items() if v is not None}
        return value

    return plain(config)


def write_toml(config: Any, path: str | Path) -> Path:
    """Write a config dataclass (or a mapping) as TOML, atomically; ``load_toml`` reads it back
    to an equal config."""
    import tomli_w

    from envs.atomic import write_atomic

    data = config if isinstance(config, Mapping) else config_to_dict(config)
    return write_atomic(path, tomli_w.dumps(data))
