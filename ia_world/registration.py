"""Register ia-world's Gymnasium environments from `import ia_world`, from any working directory.

The environments live in the top-level `envs` package installed beside `ia_world`. A project of
its own with an `envs` package (common in RL code) shadows that name when run from its folder;
then ours is loaded under the alias `ia_world_envs` (its imports are relative), and the user's
`envs` is left untouched. `gymnasium.make("ia_world:ia_world/Billiards-v0")` imports `ia_world`
itself, so it works in a fresh interpreter with no import at all.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ENVS_DIR = Path(__file__).resolve().parent.parent / "envs"
ALIAS = "ia_world_envs"


def envs_package() -> ModuleType:
    """ia-world's `envs` package (registering its ids), under `envs` or, if shadowed, an alias."""
    if ALIAS in sys.modules:
        return sys.modules[ALIAS]
    spec = importlib.util.find_spec("envs")
    if spec is not None and spec.origin and Path(spec.origin).resolve().parent == ENVS_DIR:
        return importlib.import_module("envs")
    spec = importlib.util.spec_from_file_location(
        ALIAS, ENVS_DIR / "__init__.py", submodule_search_locations=[str(ENVS_DIR)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[ALIAS] = module
    spec.loader.exec_module(module)
    return module
