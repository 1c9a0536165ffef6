"""Hydra configs: compose `configs/<command>.yaml` with overrides and validate it on a dataclass."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import configs
from ia_world.errors import ConfigError

CONFIG_DIR = Path(configs.__file__).resolve().parent
T = TypeVar("T")


def load_config(name: str, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Compose `configs/<name>.yaml` with Hydra overrides (`key=value`, `group=option`)."""
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(config_name=name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError(f"config '{name}': {error}".splitlines()[0]) from None


def to_dataclass(cfg: DictConfig | dict, schema: type[T]) -> T:
    """Validate a config against a dataclass schema (unknown keys and wrong types are errors)."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), cfg)
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None)  # name the offending key
        where = f"{schema.__name__}: {key}" if key else schema.__name__
        raise ConfigError(f"{where}: {error}".splitlines()[0]) from None
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate()
    return obj


def as_dict(obj: Any) -> dict:
    """A config dataclass (or DictConfig) as a plain JSON-able dict."""
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    return OmegaConf.to_container(obj, resolve=True)


def check_range(name: str, value, low=None, high=None) -> None:
    """Raise ConfigError unless low <= value <= high."""
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{name}={value} is out of range [{low}, {high}]")
