"""`ia-world <command> --help`: what a command does, its keys with defaults and meanings, and the
options of its config groups, all read from the schema (the dataclasses and their comments)."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import typing
from functools import cache
from typing import Any

from omegaconf import OmegaConf

from ia_world.config import CONFIG_DIR, load_config

FIELD = re.compile(r"^\s+(\w+)\s*:[^=#]+=[^#]*(?:#\s*(.+))?$")
COMMENT = re.compile(r"^\s+#\s*(.+)$")


@cache
def field_comments(schema: type) -> dict[str, str]:
    """Each field's meaning: the `# comment` after it in the dataclass source, or just above."""
    comments, above = {}, []
    sources = [inspect.getsource(c) for c in schema.__mro__ if dataclasses.is_dataclass(c)]
    for line in "\n".join(sources).splitlines():
        comment, field = COMMENT.match(line), FIELD.match(line)
        if comment:
            above.append(comment.group(1).strip())
        elif field:
            meaning = field.group(2) or " ".join(above)
            if meaning and field.group(1) not in comments:
                comments[field.group(1)] = meaning.strip()
            above = []
        else:
            above = []
    return comments


def nested_schema(schema: type, name: str, value: Any) -> type | None:
    """The dataclass a field holds: its annotation, or the schema its group option names."""
    hint = typing.get_type_hints(schema).get(name)
    if dataclasses.is_dataclass(hint):
        return hint
    groups = getattr(inspect.getmodule(schema), "config_groups", None)
    if groups is not None and isinstance(value, dict):
        return groups().get(name, {}).get(value.get("name"))
    return None


def key_rows(schema: type, values: dict, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, meaning) of every leaf key of a composed config, schema order."""
    rows = []
    comments = field_comments(schema)
    for item in dataclasses.fields(schema):
        value = values.get(item.name)
        child = nested_schema(schema, item.name, value)
        if child is not None and isinstance(value, dict):
            rows += key_rows(child, value, f"{prefix}{item.name}.")
        else:
            shown = "(required)" if value == "???" else json.dumps(value)
            rows.append((f"{prefix}{item.name}", shown, comments.get(item.name, "")))
    return rows


def group_rows(command: str) -> list[tuple[str, str, list[str]]]:
    """(group, default option, every option) of the groups in the command's defaults list."""
    raw = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / f"{command}.yaml"))
    rows = []
    for entry in raw.get("defaults", []):
        if isinstance(entry, dict):
            for key, default in entry.items():
                group = key.removeprefix("optional ")  # e.g. "regime@pretrain": group@package
                folder = CONFIG_DIR / group.partition("@")[0]
                options = sorted(p.stem for p in folder.glob("*.yaml"))
                rows.append((group, "null" if default is None else str(default), options))
    return rows


def command_help(command: str, summary: str, schema: type, overrides: list[str] = ()) -> str:
    """The text of `ia-world <command> [group=option ...] --help`: the keys of the config the
    overrides compose (`solve agent=latent --help` lists the latent agent's keys)."""
    values = OmegaConf.to_container(load_config(command, list(overrides), schema),
                                    throw_on_missing=False)
    doc = inspect.getdoc(schema) or ""
    lines = [f"ia-world {command}: {summary}", "",
             f"usage: ia-world {command} [key=value ...] [group=option ...] [--dry-run]",
             "", doc, "", f"keys (default, meaning){''.join(' ' + o for o in overrides)}:"]
    rows = key_rows(schema, values)
    width = max(len(key) + len(default) for key, default, _ in rows) + 4
    lines += [f"  {key}={default}".ljust(width + 3) + (f"  # {meaning}" if meaning else "")
              for key, default, meaning in rows]
    groups = group_rows(command)
    if groups:
        lines += ["", "config groups (group=option; the default first):"]
        lines += [f"  {group}: {default}" + "".join(f", {o}" for o in options if o != default)
                  for group, default, options in groups]
    lines += ["", "`ia-world <command> <group>=<option> --help` lists the keys with that option.",
              "--dry-run validates the config and prints it without running anything.",
              "Keys and meanings come from the config dataclasses (docs/DESIGN.md section 2)."]
    return "\n".join(lines)


def option_keys(command: str, schema: type, overrides: list[str] = ()) -> set[str]:
    """The dotted keys of the config `command` composes with these `group=option` overrides."""
    values = OmegaConf.to_container(load_config(command, list(overrides), schema),
                                    throw_on_missing=False)
    return {key for key, _, _ in key_rows(schema, values)}


def options_with_own_keys(command: str, schema: type) -> list[str]:
    """The `group=option` overrides that bring keys the default config lacks (`agent=latent`)."""
    default_keys = option_keys(command, schema)
    return [f"{group}={option}" for group, default, options in group_rows(command)
            for option in options if option != default
            and option_keys(command, schema, [f"{group}={option}"]) - default_keys]

