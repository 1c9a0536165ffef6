"""Configs: dataclasses are the one schema; Hydra composes YAML presets and overrides onto them.

Every command's dataclass is registered in Hydra's ConfigStore as `<command>_schema` and named
first in the defaults list of `configs/<command>.yaml`, so YAML files hold presets and overrides
only. `to_dataclass` validates the whole tree: types and unknown keys (OmegaConf), non-finite
floats (every float field), then each nested config's own `validate()`, deepest first.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import importlib
import math
import re
from pathlib import Path
from typing import Any, TypeVar

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import configs
from envs.base import is_plain_name
from ia_world.errors import ConfigError

CONFIG_DIR = Path(configs.__file__).resolve().parent
T = TypeVar("T")
MAX_SEED = 2**63 - 1  # every `seed` / `*_seed` key is an integer in [0, MAX_SEED]


def schema_name(command: str) -> str:
    """The ConfigStore name of a command's schema (first entry of its YAML defaults list)."""
    return f"{command}_schema"


def register_schema(command: str, schema: type) -> None:
    """Store a command's dataclass in Hydra's ConfigStore as `<command>_schema`.

    A schema module may define `config_groups() -> {group: {option: dataclass}}` for groups whose
    options have different schemas (solve's `agent`); each is stored as `<group>/<option>_schema`
    for the option's YAML to name in its defaults list.
    """
    store = ConfigStore.instance()
    store.store(name=schema_name(command), node=schema)
    groups = getattr(importlib.import_module(schema.__module__), "config_groups", None)
    for group, options in (groups() if groups is not None else {}).items():
        for option, node in options.items():
            store.store(group=group, name=schema_name(option), node=node)


def load_attr(spec: str):
    """The attribute named by "module:attribute" (imported when first needed)."""
    module_name, attribute = spec.split(":")
    return getattr(importlib.import_module(module_name), attribute)


def load_config(name: str, overrides: list[str] | tuple[str, ...] = (),
                schema: type | None = None) -> DictConfig:
    """Compose `configs/<name>.yaml` with Hydra overrides, on `schema` (a command's dataclass,
    registered as `<name>_schema` for the YAML's defaults list) when given."""
    if schema is not None:
        register_schema(name, schema)
    check_group_options(name, overrides)
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(config_name=name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as error:
        hint = nearest_key(str(error), schema)
        raise ConfigError(f"config '{name}': {one_line(error)}{hint}") from None


def check_group_options(name: str, overrides: list[str] | tuple[str, ...]) -> None:
    """ConfigError listing the available options when an override names a config group option
    that does not exist (Hydra ignores one silently for an optional group: `regime=nosuch`)."""
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        group = CONFIG_DIR / key.split("@")[0]
        if not sep or not key.split("@")[0].isidentifier() or not group.is_dir():
            continue
        options = sorted(p.stem for p in group.glob("*.yaml"))
        if value not in (*options, "null") and "/" not in value and "," not in value:
            raise ConfigError(f"config '{name}': {key}={value}: no such option; available: "
                              f"{', '.join(options)}")


def unknown_keys(node: Any, prefix: str = "") -> list[str]:
    """Dotted keys of a merged config that its dataclass schema does not declare (`+key=v`
    outside a dict field); dict fields take any key."""
    if not isinstance(node, DictConfig):
        return []
    schema = OmegaConf.get_type(node)
    names = ({item.name for item in dataclasses.fields(schema)}
             if dataclasses.is_dataclass(schema) else None)
    found = []
    for key in node:
        if names is not None and key not in names:
            found.append(f"{prefix}{key}")
        elif names is not None:
            found += unknown_keys(node._get_node(key), f"{prefix}{key}.")
    return found


def nearest_key(message: str, schema: type | None) -> str:
    """'; did you mean ...?' for a key the schema does not have (a typo), else ''."""
    unknown = re.search(r"Could not override '([\w.]+)'", message)
    if unknown is None or schema is None:
        return ""
    keys = flat_keys(OmegaConf.to_container(OmegaConf.structured(schema),
                                            throw_on_missing=False))
    close = difflib.get_close_matches(unknown.group(1), keys, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def flat_keys(node: dict, prefix: str = "") -> list[str]:
    """Dotted keys of every leaf of a nested dict."""
    keys = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        keys += flat_keys(value, f"{path}.") if isinstance(value, dict) and value else [path]
    return keys


def one_line(error: Exception) -> str:
    """An OmegaConf / Hydra message on one line, with its cause and the options it lists."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    head = lines[0] if lines else type(error).__name__
    cause = error.__cause__
    if cause is not None and str(cause).strip():
        head += f": {str(cause).strip().splitlines()[0]}"
    hints = []
    if any(line.startswith("Available options") for line in lines):
        start = next(i for i, line in enumerate(lines) if line.startswith("Available options"))
        options = [line for line in lines[start + 1:] if not line.startswith(("Config search",
                   "provider=")) and not line.endswith("_schema")]  # not the schemas' entries
        hints.append(f"available: {', '.join(options)}")
    return "; ".join([head, *hints])


def to_dataclass(cfg: DictConfig | dict, schema: type[T]) -> T:
    """Validate a config against a dataclass schema, whole: types, unknown keys, ranges."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), cfg)
        extra = unknown_keys(merged)
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None)  # name the offending key
        where = f"{schema.__name__}: {key}" if key else schema.__name__
        raise ConfigError(f"{where}: {one_line(error)}") from None
    if extra:
        raise ConfigError(f"{schema.__name__}: unknown key {extra[0]} (`+key=` adds keys only "
                          "inside dict fields such as env.kwargs; `--help` lists the keys)"
                          f"{nearest_key(f'Could not override {extra[0]!r}', schema)}")
    validate_tree(obj)
    return obj


def validate_tree(obj: Any, prefix: str = "") -> None:
    """Reject non-finite floats (in lists too) and seeds outside [0, MAX_SEED] (`seed`, `*_seed`,
    each of `seeds`, `*_seeds`) anywhere, then every nested `validate()`.

    Children are validated before their parent (deepest first).

    A nested config's ConfigError is re-raised with the key path in front (`model.patch=7 ...`).
    """
    if not dataclasses.is_dataclass(obj):
        return
    for item in dataclasses.fields(obj):
        value, key = getattr(obj, item.name), f"{prefix}{item.name}"
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}={value} must be a finite number")
        if item.name == "seed" or item.name.endswith("_seed"):
            check_range(key, value, 0, MAX_SEED)
        if item.name == "seeds" or item.name.endswith("_seeds"):  # a list of seeds
            for i, seed in enumerate(value or []):
                check_range(f"{key}[{i}]", seed, 0, MAX_SEED)
        for i, element in enumerate(value if isinstance(value, list) else []):
            if isinstance(element, float) and not math.isfinite(element):
                raise ConfigError(f"{key}[{i}]={element} must be a finite number")
        children = value.items() if isinstance(value, dict) else [(None, value)]
        for name, child in children:
            validate_tree(child, f"{key}.{name}." if name is not None else f"{key}.")
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except ConfigError as error:
            raise ConfigError(f"{prefix}{error}") from None


def as_dict(obj: Any) -> dict:
    """A config dataclass (or DictConfig) as a plain JSON-able dict (enums as their values)."""
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj, dict_factory=lambda items: {
            k: v.value if isinstance(v, enum.Enum) else v for k, v in items})
    return OmegaConf.to_container(obj, resolve=True)


def check_range(name: str, value, low=None, high=None) -> None:
    """Raise ConfigError unless value is finite and low <= value <= high."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name}={value} must be a finite number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{name}={value} is out of range [{low}, {high}]")


def check_choice(name: str, value, choices) -> None:
    """Raise ConfigError unless value is one of choices."""
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(map(str, choices))}")


def check_name(key: str, value: str) -> None:
    """Raise ConfigError unless value is a plain name (it becomes one path component)."""
    if not is_plain_name(value):
        raise ConfigError(f"{key}={value!r} must be a plain name (letters, digits, '_', '-', "
                          "'.'; not starting with '.'): it names a directory inside out=")


def check_path(name: str, value: str) -> None:
    """Raise ConfigError on an empty path (`out=` must name a directory)."""
    if not str(value).strip():
        raise ConfigError(f"{name} must name a file or directory (got an empty string)")


def config_diff(stored: dict, current: dict, ignore: frozenset[str] = frozenset(),
                prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts (except `ignore`)."""
    keys = sorted(set(stored) | set(current))
    changed = []
    for key in keys:
        path = f"{prefix}{key}"
        if path in ignore:
            continue
        a, b = stored.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += config_diff(a, b, ignore, f"{path}.")
        elif a != b:
            changed.append(f"{path}: {a!r} stored, {b!r} now")
    return changed
