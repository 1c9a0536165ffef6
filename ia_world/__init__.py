"""IA-JEPA: interaction-aware video JEPA world models.

Importing `ia_world` registers the Gymnasium environments (`ia_world/Billiards-v0`, ...).
"""

from ia_world.registration import envs_package

envs_package()


def __getattr__(name: str):
    """Lazy exports: `ia_world.load_encoder` without importing torch at package import."""
    if name == "load_encoder":
        from ia_world.checkpoint import load_encoder

        return load_encoder
    raise AttributeError(f"module 'ia_world' has no attribute {name!r}")
