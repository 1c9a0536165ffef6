"""Environment docstrings follow Gymnasium's classic-control layout and name every keyword."""

import inspect

import gymnasium as gym
import pytest

import envs
from envs.base import SceneEnv

SECTIONS = ("## Description", "## Action Space", "## Observation Space", "## Rewards",
            "## Starting State", "## Episode End", "## Arguments", "## Example")


def env_class(env_id: str) -> type:
    """The class behind an id, resolved through the Gymnasium registry's entry point."""
    entry_point = gym.spec(env_id).entry_point
    module, _, name = entry_point.partition(":")
    return getattr(__import__(module, fromlist=[name]), name)


def keyword_names(cls: type) -> set[str]:
    """Keyword arguments the constructor takes, following `**kwargs` up the class chain."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass in (gym.Env, object):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in parameters if p.name != "self"
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return names


@pytest.mark.parametrize("env_id", sorted(envs.ENV_IDS))
def test_env_docstring_layout(env_id):
    cls = env_class(env_id)
    assert f"{cls.__module__}:{cls.__name__}" == envs.ENV_IDS[env_id]
    doc = inspect.getdoc(cls)
    assert doc, f"{cls.__name__} has no docstring"
    summary = doc.splitlines()[0]
    assert summary.strip() and not summary.startswith("#"), "the first line is the summary"
    positions = [doc.find(section) for section in SECTIONS]
    missing = [s for s, at in zip(SECTIONS, positions) if at < 0]
    assert not missing, f"{cls.__name__} lacks sections {missing}"
    assert positions == sorted(positions), f"{cls.__name__}: sections out of order"
    arguments = doc[doc.index("## Arguments"):doc.index("## Example")]
    keywords = keyword_names(cls) | set(gym.spec(env_id).kwargs)
    if issubclass(cls, SceneEnv):
        assert {"size", "max_steps", "render_mode"} <= keywords
    unnamed = sorted(k for k in keywords if f"`{k}`" not in arguments)
    assert not unnamed, f"{cls.__name__}'s Arguments section does not name {unnamed}"
    assert env_id in doc, f"{cls.__name__}'s docstring does not name {env_id}"
    assert 'gymnasium.make("' in doc.split("## Example")[1]


def test_env_name_table_is_the_one_the_configs_and_registry_use():
    from ia_world.config import CONFIG_DIR, load_config, to_dataclass
    from ia_world.data.generator import EnvConfig

    stems = {path.stem for path in (CONFIG_DIR / "env").glob("*.yaml")}
    assert stems == set(envs.ENV_NAMES)
    assert set(envs.ENV_NAMES.values()) <= set(envs.ENV_IDS)
    for name in stems:
        env = to_dataclass(load_config(f"env/{name}").env, EnvConfig)
        assert (env.name, env.id) == (name, envs.ENV_NAMES[name])
