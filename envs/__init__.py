"""Gymnasium environments of ia-world, registered on import under the `ia_world/` namespace.

Entry points are relative to this package's own name, so the package also works when loaded
under an alias (ia_world.registration does that when another `envs` package shadows it).
"""

from gymnasium.envs.registration import register, registry

ENV_IDS = {
    "ia_world/Billiards-v0": "envs.pymunk_scenes:Billiards",
    "ia_world/PhyreLite-v0": "envs.phyre_lite.env:PhyreLiteEnv",
    "ia_world/Tabletop3D-v0": "envs.bullet_scenes:Tabletop3D",
    "ia_world/Drop3D-v0": "envs.bullet_scenes:Drop3D",
    "ia_world/BilliardsInelastic-v0": "envs.pymunk_scenes:Billiards",
    "ia_world/Gravity2D-v0": "envs.pymunk_scenes:Gravity2D",
    "ia_world/Cradle-v0": "envs.pymunk_scenes:Cradle",
    "ia_world/PushBall-v0": "envs.pushball:PushBall",
    "ia_world/PushBallSparse-v0": "envs.pushball:PushBall",
    "ia_world/PushBall3D-v0": "envs.pushball:PushBall3D",
    "ia_world/PushBall3DSparse-v0": "envs.pushball:PushBall3D",
}
# the recorded scenes: name (configs/env/<name>.yaml, `env=<name>`) -> id; the one such table
ENV_NAMES = {
    "billiards": "ia_world/Billiards-v0",
    "billiards_inelastic": "ia_world/BilliardsInelastic-v0",
    "cradle": "ia_world/Cradle-v0",
    "gravity2d": "ia_world/Gravity2D-v0",
    "drop3d": "ia_world/Drop3D-v0",
    "tabletop3d": "ia_world/Tabletop3D-v0",
}
# register-time kwargs of the ids that share an entry point with another id
ENV_KWARGS = {
    "ia_world/BilliardsInelastic-v0": {"elastic": False},
    "ia_world/PushBallSparse-v0": {"reward": "sparse"},
    "ia_world/PushBall3DSparse-v0": {"reward": "sparse"},
}


def _register_all() -> None:
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in registry:
            here = f"{__name__}.{entry_point.split('.', 1)[1]}"  # envs.x:Y under any name
            register(id=env_id, entry_point=here, disable_env_checker=True,
                     kwargs=ENV_KWARGS.get(env_id, {}))


_register_all()
