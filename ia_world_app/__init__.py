"""The application layer: the `ia-world` command table, its help, and the composite commands
(`compare`, `demo`) built from the stages of `ia_world` and `agents`.

Layers, top to bottom (an import-linter contract in pyproject.toml, checked by
tests/test_layers.py): `ia_world_app` > `agents` > `ia_world` > `envs`. Nothing below imports
this package.
"""
