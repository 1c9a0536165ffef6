"""Gymnasium environments of ia-world, registered on import under the `ia_world/` namespace."""

from gymnasium.envs.registration import register, registry

ENV_IDS = {
    "ia_world/Billiards-v0": "envs.pymunk_scenes:Billiards",
}


def _register_all() -> None:
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point, disable_env_checker=True)


_register_all()
