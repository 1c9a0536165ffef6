"""A Griffe extension for the API reference: each config dataclass field gets its meaning.

The meaning is the `# comment` beside or above the field, read by the same helper that writes
`ia-world <command> --help` (`ia_world_app.help.field_comments`), so the CLI and API references
cannot disagree.
"""

from __future__ import annotations

import dataclasses
import importlib

import griffe

from ia_world_app.help import field_comments


class FieldComments(griffe.Extension):
    """Set each undocumented dataclass field's docstring to its schema comment."""

    def on_class_members(self, *, cls: griffe.Class, **kwargs) -> None:
        """Called by Griffe once a class and its members are loaded."""
        try:
            runtime = getattr(importlib.import_module(cls.module.path), cls.name)
        except (ImportError, AttributeError):
            return
        if not dataclasses.is_dataclass(runtime):
            return
        for name, meaning in field_comments(runtime).items():
            member = cls.members.get(name)
            if member is not None and not member.is_alias and member.docstring is None:
                member.docstring = griffe.Docstring(meaning, parent=member)
