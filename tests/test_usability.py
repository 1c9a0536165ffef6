"""Using ia-world as a library: `--help` from the schema, environments from any folder."""

import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ia_world.config import CONFIG_DIR, load_config, register_schema
from ia_world_app.cli import COMMANDS, load_attr, main
from ia_world_app.help import field_comments, key_rows


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_help_lists_its_keys_defaults_meanings_and_groups(command, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"ia-world {command}: {COMMANDS[command].summary}")
    schema = load_attr(COMMANDS[command].schema)
    register_schema(command, schema)
    values = OmegaConf.to_container(load_config(command, [], schema), throw_on_missing=False)
    for key, default, meaning in key_rows(schema, values):
        line = next(li for li in text.splitlines() if li.strip().startswith(f"{key}="))
        assert default in line and meaning, f"{command}: {key} has no meaning in its schema"
        assert meaning in line
    for group in ("env", "model", "masking", "data", "preset", "agent"):
        if f"- {group}:" in (CONFIG_DIR / f"{command}.yaml").read_text():
            assert f"  {group}: " in text


@pytest.mark.parametrize("agent", ["random", "oracle", "latent", "state_wm"])
def test_group_option_help_lists_that_options_keys(agent, capsys):
    assert main(["solve", f"agent={agent}", "--help"]) == 0
    text = capsys.readouterr().out
    schema = load_attr(COMMANDS["solve"].schema)
    values = OmegaConf.to_container(load_config("solve", [f"agent={agent}"], schema),
                                    throw_on_missing=False)
    rows = key_rows(schema, values)
    assert {key for key, _, _ in rows} >= {"agent.name", "agent.seed"}
    for key, default, meaning in rows:
        line = next(li for li in text.splitlines() if li.strip().startswith(f"{key}="))
        assert default in line and meaning in line and meaning, f"{agent}: {key} has no meaning"
    if agent == "latent":  # the planner's own keys, which `solve --help` (agent=random) hides
        for key in ("agent.rollout", "agent.world_model", "agent.planner.population",
                    "agent.planner.iterations", "agent.encoder"):
            assert f"  {key}=" in text
    else:
        assert "agent.rollout=" not in text or agent == "state_wm"


def test_top_level_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert all(f"  {name}" in text and c.summary in text for name, c in COMMANDS.items())


def test_field_meanings_come_from_the_comment_beside_or_above_each_field():
    from ia_world_app.demo import DemoConfig

    comments = field_comments(DemoConfig)
    assert comments["compare"].startswith("pretrain + evaluate every strategy, then report.py's")
    assert comments["compare"].endswith("env and device are set from out / env / device)")
    assert comments["overlay_strategies"] == "panels of the mask videos"
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


@pytest.fixture
def restore_templates():
    """Leave the template registry as it was (registration is process-wide)."""
    from envs.phyre_lite.templates import TEMPLATES

    before = dict(TEMPLATES)
    yield
    TEMPLATES.clear()
    TEMPLATES.update(before)


def ledge_drop(rng):
    """A user template: push the green ball off a ledge onto a goal strip on the floor."""
    from envs.phyre_lite.templates import ball, floor_bin, shelf

    top, edge = rng.uniform(80, 120), rng.uniform(80, 100)
    return [shelf(0, edge, top), ball("green", edge - 20, top + 10, 10),
            *floor_bin(edge + 20, 80, 20, 20)]


def test_custom_template_runs_with_random_and_oracle_and_keeps_builtin_folds(
        tmp_path, restore_templates):
    from agents.solve import SolveConfig, solve
    from envs.phyre_lite import register_template, split_tasks

    folds = {(s, f): split_tasks(s, f) for s in ("within", "cross") for f in range(5)}
    register_template("ledge_drop", ledge_drop)
    for (split, fold), (train, test) in folds.items():
        new_train, new_test = split_tasks(split, fold)
        assert new_train == train and new_test[: len(test)] == test
        assert new_test[len(test):] == [f"ledge_drop:{v:03d}" for v in range(100)]
    results = {agent: solve(SolveConfig(agent={"name": agent}, templates=["ledge_drop"],
                                        puzzles=3, attempts=20, videos=False,
                                        out=str(tmp_path)))["overall"]
               for agent in ("random", "oracle")}
    assert results["oracle"]["puzzles"] == 3 and results["oracle"]["solved"] == 1.0
    assert results["oracle"]["auccess"] > results["random"]["auccess"]


def test_templates_solved_by_doing_nothing_or_named_twice_are_refused(restore_templates):
    from envs.phyre_lite import TEMPLATES, register_template
    from envs.phyre_lite.templates import ball, floor_bin

    def resting_on_goal(rng):
        return [ball("green", 100, 13, 10), *floor_bin(60, 80, 20, 20)]

    with pytest.raises(ValueError, match="solved by doing nothing"):
        register_template("resting", resting_on_goal)
    with pytest.raises(ValueError, match="in use"):
        register_template("ledge_push", ledge_drop)
    assert "resting" not in TEMPLATES


ROOT = Path(__file__).resolve().parents[1]
BAD_INPUT_PAGE = "docs/robustness.md"  # its commands are the bad-input cases: each must fail
GENERATED_PAGES = {"docs/cli.md"}  # `--help` text, not commands (tests/test_docs.py checks it)


def doc_pages() -> list[Path]:
    """README.md and every hand-written docs page (docs/**/*.md), the generated ones left out."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [page for page in pages if page.relative_to(ROOT).as_posix() not in GENERATED_PAGES]


def python_blocks(page: Path) -> list[str]:
    """The ```python blocks of a page, dedented."""
    return [textwrap.dedent(block)
            for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)]


@pytest.mark.slow
def test_every_python_block_of_the_readme_runs_as_written(tmp_path, monkeypatch):
    blocks = python_blocks(ROOT / "README.md")
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
    assert namespace["metrics"]["run"]["steps"] == 4 and "probe" in namespace["metrics"]
    assert namespace["batch"]["frames"].shape[:2] == (8, 16)


DOCS_WITH_PYTHON = [page for page in doc_pages()[1:] if python_blocks(page)]


@pytest.mark.parametrize("page", DOCS_WITH_PYTHON,
                         ids=[page.relative_to(ROOT).as_posix() for page in DOCS_WITH_PYTHON])
def test_every_python_block_of_the_docs_runs_as_written(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}  # one namespace per page: a page's blocks build on each other
    for block in python_blocks(page):
        exec(compile(block, str(page), "exec"), namespace)  # noqa: S102 (our own docs)


def page_commands(text: str) -> list[list[str]]:
    """Every concrete `ia-world ...` (or `torchrun ... -m ia_world_app.cli ...`) command of a page.

    Inline code spans and lines of fenced or indented code blocks count; an inline span that is
    only `ia-world <command>` names the command. Lines with placeholders (`<...>`, `$var`,
    `...`, `{...}`) are templates, not commands.
    """
    text = text.replace("\\\n", " ")
    lines = [span for span in re.findall(r"`(ia-world [^`]+)`", text.replace("\n", " "))
             if " " in span.strip().removeprefix("ia-world ")]
    code = "\n".join(re.findall(r"```\w*\n(.*?)```", text, re.S)
                     + re.findall(r"^    .*$", text, re.M))  # fenced and indented code
    lines += [line.split("  #")[0] for line in code.splitlines()
              if re.match(r"^\s*(ia-world|torchrun .* -m ia_world_app\.cli) ", line)]
    lines += re.findall(r"&& (ia-world [^&\n]+)$", code, re.M)  # the set-up line's demo
    found = []
    for line in lines:
        if not re.search(r"[<$]|\.\.\.|[{}]|\[key|--help", line):
            command = line[line.index("pretrain"):] if "ia_world_app.cli" in line else \
                line.strip().removeprefix("ia-world ")
            found.append(shlex.split(command))
    return found


def doc_commands() -> tuple[list[tuple[str, list[str]]], list[tuple[str, list[str]]]]:
    """(commands, bad-input commands) of the README and the docs, each with its page."""
    found: tuple[list, list] = ([], [])
    for page in doc_pages():
        name = page.relative_to(ROOT).as_posix()
        bucket = found[1] if name == BAD_INPUT_PAGE else found[0]
        bucket += [(name, argv) for argv in page_commands(page.read_text())]
    return found


def test_every_readme_and_docs_command_validates_and_the_bad_input_ones_fail_cleanly(capsys):
    commands, bad = doc_commands()
    assert len(commands) >= 15 and bad
    assert any(name == "README.md" for name, _ in commands)
    for name, argv in commands:
        assert main([*argv, "--dry-run"]) == 0, (name, argv, capsys.readouterr().err)
    for name, argv in bad:
        assert main([*argv, "--dry-run"]) == 2, (name, argv)
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
