"""Typed configuration: YAML files -> frozen pydantic models, with ``key=value`` overrides.

Every config class derives from :class:`ConfigModel`, which forbids unknown
keys and does not coerce types (``"5"`` is not an int). Errors are raised as
:class:`ConfigError` naming the file (or the command line), the dotted key and
what was expected::

    configs/sim/default.yaml: key 'camera.hieght': unknown key (expected one of: height, tilt_deg, ...)

Components never read configs themselves: they take explicit constructor
arguments, and a ``from_config`` classmethod maps a config onto them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Annotated, Any, Iterable, Mapping, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T", bound="ConfigModel")


class ConfigError(ValueError):
    """A config file or override is invalid (names the source, the key and what was expected)."""


class ConfigModel(BaseModel):
    """Base of all config classes: frozen, unknown keys rejected, no type coercion."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (round-trips through :func:`config_from_mapping`)."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """YAML text of this config."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def parse_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """Parses ``a.b=value`` strings; values are read as YAML (``3`` -> int, ``[1, 2]`` -> list).

    Raises:
        ConfigError: an override without ``=`` or with an empty key.
    """
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"command line: override '{item}': expected key=value, e.g. camera.height=2.4")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"command line: override '{item}': value is not valid YAML ({e})") from None
    return out


def parse_args_with_overrides(parser: argparse.ArgumentParser, argv: list[str] | None = None):
    """``parser.parse_args`` that also accepts ``key=value`` config overrides anywhere on the line.

    Returns the namespace with the overrides in ``.overrides`` (a list of strings);
    any other unknown argument is a usage error, as with ``parse_args``.
    """
    args, extra = parser.parse_known_args(argv)
    bad = [a for a in extra if a.startswith("-") or "=" not in a]
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)}")
    args.overrides = list(getattr(args, "overrides", None) or []) + extra
    return args


def _set_dotted(data: dict[str, Any], key: str, value: Any, source: str) -> None:
    node = data
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"{source}: key '{'.'.join(parts[: i + 1])}' is not a section, cannot set '{key}'")
        node = child
    node[parts[-1]] = value


def _union_members(annotation: Any) -> list[type[BaseModel]]:
    """Config classes of a (possibly ``Annotated``) union annotation; [] for anything else."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]


def _walk(cls: type[BaseModel], loc: tuple) -> tuple[Any, tuple[str, ...]]:
    """Follows ``loc`` through nested models; returns the model there and the user-facing key parts.

    Tagged unions put the tag value into pydantic's error location
    (``method.supervised.los``); it is resolved to that member and left out of the key.
    """
    model: Any = cls
    key: list[str] = []
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if get_origin(model) in (list, tuple) and isinstance(part, int) and get_args(model):
            key.append(str(part))
            model = get_args(model)[0]
            continue
        members = _union_members(model)
        if members:
            chosen = [m for m in members if any(str(part) in get_args(f.annotation) for f in m.model_fields.values())]
            if chosen:
                model = chosen[0]
                continue
            model = None
        key.append(str(part))
        if isinstance(model, type) and issubclass(model, BaseModel) and part in model.model_fields:
            model = model.model_fields[part].annotation
        else:
            model = None
    return model, tuple(key)


def _fields_at(cls: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) model at ``loc`` (used to list allowed keys)."""
    model, _ = _walk(cls, loc)
    if _union_members(model):
        return sorted({f for m in _union_members(model) for f in m.model_fields})
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _describe_error(cls: type[BaseModel], err: dict) -> str:
    _, parts = _walk(cls, tuple(err["loc"]))
    key = ".".join(parts) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _fields_at(cls, tuple(err["loc"][:-1]))
        return f"key '{key}': unknown key (expected one of: {', '.join(allowed)})"
    if err["type"] == "missing":
        return f"key '{key}': required key is missing"
    got = err.get("input")
    return f"key '{key}': {err['msg'].replace('Input should be', 'expected')}, got {got!r}"


def config_from_mapping(cls: type[T], data: Mapping[str, Any], source: str = "<mapping>",
                        overrides: Mapping[str, Any] | None = None) -> T:
    """Validates a mapping (plus dotted overrides) into ``cls``.

    Args:
        cls: The config class.
        data: Parsed YAML (a mapping).
        source: Name of where ``data`` came from, used in error messages.
        overrides: Dotted key -> value, applied on top of ``data``.

    Raises:
        ConfigError: naming ``source`` (or the command line), every bad key and what was expected.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of keys to values at the top level, got {type(data).__name__}")
    merged = json.loads(json.dumps(dict(data), default=str))
    overrides = dict(overrides or {})
    for key, value in overrides.items():
        _set_dotted(merged, key, value, "command line")
    try:
        # JSON mode: strict types, but YAML lists are accepted for tuple fields.
        return cls.model_validate_json(json.dumps(merged))
    except ValidationError as e:
        lines = []
        for err in e.errors():
            dotted = ".".join(_walk(cls, tuple(err["loc"]))[1])
            tag = err["type"] == "union_tag_invalid"
            where = "command line" if any(dotted == k or dotted.startswith(k + ".") or (tag and k.startswith(dotted + "."))
                                          for k in overrides) else source
            lines.append(f"{where}: {_describe_error(cls, err)}")
        raise ConfigError("invalid config:\n  " + "\n  ".join(lines) if len(lines) > 1 else lines[0]) from None


def load_config(cls: type[T], path: str | Path | None = None, overrides: Iterable[str] = ()) -> T:
    """Loads a YAML file into ``cls``; ``path=None`` starts from the class defaults.

    Args:
        cls: The config class.
        path: YAML file.
        overrides: ``key=value`` strings from the command line.

    Raises:
        ConfigError: missing/unreadable or binary file, YAML syntax error (with line), unknown key, wrong type.
    """
    data: Any = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{source}: cannot read config file ({e.strerror or e})") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"{source}: not a text file (byte {e.start} is not UTF-8: binary data?); expected a "
                              f"YAML config of key: value lines") from None
        if "\x00" in text:
            raise ConfigError(f"{source}: not a text file (it holds NUL bytes: binary data?); expected a YAML "
                              f"config of key: value lines")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"{source}: not valid YAML{at}: {getattr(e, 'problem', e)}") from None
        data = {} if data is None else data
    return config_from_mapping(cls, data, source, parse_overrides(overrides))
