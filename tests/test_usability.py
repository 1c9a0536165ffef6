"""Using ia-world as a library: `--help` from the schema, environments from any folder."""

import subprocess
import sys
import textwrap

import pytest
from omegaconf import OmegaConf

from ia_world.cli import COMMANDS, load_attr, main
from ia_world.config import CONFIG_DIR, load_config, register_schema
from ia_world.help import field_comments, key_rows


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_help_lists_its_keys_defaults_meanings_and_groups(command, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"ia-world {command}: {COMMANDS[command].summary}")
    schema = load_attr(COMMANDS[command].schema)
    register_schema(command, schema)


    values = OmegaConf.to_container(load_config(command, []), throw_on_missing=False)
    for key, default, meaning in key_rows(schema, values):
        line = next(li for li in text.splitlines() if li.strip().startswith(f"{key}="))
        assert default in line and meaning, f"{command}: {key} has no meaning in its schema"
        assert meaning in line
    for group in ("env", "model", "masking", "data", "preset", "agent"):
        if f"- {group}:" in (CONFIG_DIR / f"{command}.yaml").read_text():
            assert f"  {group}: " in text


def test_top_level_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert all(f"  {name}" in text and c.summary in text for name, c in COMMANDS.items())


def test_field_meanings_come_from_the_comment_beside_or_above_each_field():
    from ia_world.demo import DemoConfig

    comments = field_comments(DemoConfig)
    assert comments["strategies"].startswith("pretrained and compared")
    assert comments["videos"] == "held-out episodes shown with masks overlaid"


def test_envs_register_in_a_fresh_interpreter_in_a_folder_with_its_own_envs(tmp_path):
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "__init__.py").write_text("MINE = True\n")
    script = textwrap.dedent("""
        import gymnasium as gym
        env = gym.make("ia_world:ia_world/Billiards-v0", size=32)
        obs, info = env.reset(seed=0)
        assert obs.shape == (32, 32, 3) and info["collisions"] == []
        import envs
        assert envs.MINE  # the project's own envs package is untouched
        import ia_world
        gym.make("ia_world/PhyreLite-v0").reset(seed=0)
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
