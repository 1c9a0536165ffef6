"""The config schema: YAML presets fit their dataclasses, nothing is declared twice, and every
numeric key of every command either validates or stops with one line naming it (never a
traceback)."""

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from agents.solve import AGENTS
from ia_world.checkpoint import trained_weights
from ia_world.config import CONFIG_DIR, validate_tree
from ia_world.data.generator import EnvConfig, GenerateConfig, generate
from ia_world.data.sources import DataConfig
from ia_world.errors import CheckpointError, ConfigError
from ia_world.masking import MaskConfig
from ia_world.models import ModelConfig
from ia_world.training import PretrainConfig
from ia_world_app.cli import COMMANDS, load_attr, main, parse
from ia_world_app.demo import DemoConfig

# the values a command needs before it validates at all (paths only: nothing is read)
REQUIRED = {"generate": ["out=x"], "evaluate": ["ckpt=x"], "world_model": ["encoder=x"],
            "surprise": ["encoder=x", "world_model=y"], "verify": ["path=x"]}
GROUP_SCHEMAS = {"env": EnvConfig, "model": ModelConfig, "masking": MaskConfig,
                 "data": DataConfig, "preset": DemoConfig, "regime": PretrainConfig}
TRIALS = ("0", "-1", "nan", "inf", "1e30")  # 1e30 is "huge" (an int key refuses the float)


def numeric_keys(node, prefix: str = "") -> list[str]:
    """Dotted keys of every int / float leaf of a composed config."""
    keys = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            keys += numeric_keys(value, f"{path}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            keys.append(path)
    return keys


def composed(command: str, extra: list[str] = ()) -> dict:
    """The command's composed config as a plain dict (validated)."""
    config = parse(command, [*REQUIRED.get(command, []), *extra])
    return OmegaConf.to_container(OmegaConf.structured(config), enum_to_str=True)


def leaf_defaults(schema) -> dict:
    """Nested dict of a dataclass's defaults (required values left out)."""
    return OmegaConf.to_container(OmegaConf.structured(schema), enum_to_str=True,
                                  throw_on_missing=False)


def redeclared(values: dict, defaults: dict, prefix: str = "") -> list[str]:
    """Keys whose YAML value equals the schema default (a default written twice)."""
    found = []
    for key, value in values.items():
        if key == "defaults" or value == "???" or not isinstance(defaults, dict) \
                or key not in defaults:
            continue
        default = defaults[key]
        if isinstance(value, dict) and isinstance(default, dict):
            found += redeclared(value, default, f"{prefix}{key}.")
        elif value == default:
            found.append(f"{prefix}{key}")
    return found


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_yaml_composes_on_its_schema_and_declares_no_default(command):
    schema = load_attr(COMMANDS[command].schema)
    assert dataclasses.is_dataclass(parse(command, REQUIRED.get(command, [])))
    raw = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / f"{command}.yaml"))
    assert raw["defaults"][0] == f"{command}_schema"
    # the demo mounts the CPU regime and switches its curve probes back off
    stated = ["compare.pretrain.probe_every"] if command == "demo" else []
    assert redeclared(raw, leaf_defaults(schema)) == stated


def group_options() -> list[tuple[str, Path]]:
    """(group, yaml) of every option file of every config group."""
    return [(path.parent.name, path) for path in sorted(CONFIG_DIR.glob("*/*.yaml"))]


@pytest.mark.parametrize(("group", "path"), group_options(), ids=lambda v: getattr(v, "stem", v))
def test_every_group_option_fits_its_schema_and_declares_no_default(group, path):
    raw = OmegaConf.to_container(OmegaConf.load(path)) or {}
    if group == "agent":
        schema = load_attr(AGENTS[path.stem][0])
        paths = {"latent": ["agent.encoder=x", "agent.world_model=y"],
                 "state_wm": ["agent.world_model=y"]}
        overrides = [f"agent={path.stem}", *paths.get(path.stem, [])]
        config = parse("solve", overrides)
        assert type(config.agent) is schema
    else:
        schema = GROUP_SCHEMAS[group]
        command = {"env": "generate", "preset": "demo", "agent": "solve"}.get(group, "pretrain")
        extra = ["data.path=x"] if group == "data" and path.stem != "live" else []
        if group == "data" and path.stem == "mix":
            extra = ["data.paths.shards=x"]
        config = parse(command, [*REQUIRED.get(command, []), f"{group}={path.stem}", *extra])
        # regime and preset: package _global_, so they set keys of the whole config
        node = config if group in ("regime", "preset") else getattr(config, group)
        assert type(node) is schema
    # compare mounts a regime on its own shorter budget (200 steps): the regime states its
    # steps; the demo mounts the regime too, so a preset states its own over the regime's
    stated = {"regime": {"steps"}, "preset": {"compare.pretrain.steps"}}.get(group, set())
    assert set(redeclared(raw, leaf_defaults(schema))) <= stated, \
        f"{path} repeats a schema default"


def test_the_cpu_regime_sets_the_same_keys_in_pretrain_compare_and_the_demo():
    direct = parse("pretrain", ["regime=cpu"])
    mounted = parse("compare", ["regime@pretrain=cpu"]).pretrain
    plain = parse("compare", []).pretrain
    demo = parse("demo", []).compare.pretrain  # the cpu preset: the regime, 1,000 steps
    # its own schedule for 1,000 steps, chosen on the val split (docs/results/demo.md)
    assert (demo.steps, demo.probe_every, demo.lr, demo.warmup_steps) == (1_000, 0, 1e-3, 10)
    for config in (direct, mounted, demo):
        # the regime chosen on the validation split at evaluate's sizes, 5 seeds
        # (docs/results/single-step-context.md): one context time step, an EMA target at lr
        # 5e-4, 3,000 steps
        if config is not demo:
            assert (config.steps, config.probe_every, config.lr) == (3_000, 500, 5e-4)
        assert (config.batch_size, config.regularizer) == (8, "vicreg")
        assert config.regularizer_weight == 0.25
        assert (config.ema_start, config.ema_end, config.probe_weights) == (0.996, 1.0, "trained")
        assert trained_weights(config.ema_start) == "target"  # the EMA target is served
        assert config.model.pred_depth == 1
        # the fix that stops the fall: switched off, the context would hold later steps too
        assert (config.masking.context_steps, config.masking.future) == (1, 0.0)
    assert (plain.steps, plain.regularizer) == (200, "none")  # compare's own budget without it


def owner(config, key: str) -> tuple[str, str]:
    """(schema class owning a dotted key, field name): the same field met in two commands."""
    *path, leaf = key.split(".")
    node = config
    for part in path:
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return (type(node).__name__ if dataclasses.is_dataclass(node) else key, leaf)


def fuzz_cases() -> list[tuple[str, list[str], str]]:
    """(command, base overrides, numeric key): every numeric field of every schema, once."""
    bases = {name: [] for name in COMMANDS}
    bases["solve oracle"] = ["agent=oracle"]
    bases["solve latent"] = ["agent=latent", "agent.encoder=x", "agent.world_model=y"]
    bases["solve state_wm"] = ["agent=state_wm", "agent.world_model=y"]
    cases, seen = [], set()
    for name, base in bases.items():
        command = name.split()[0]
        config = parse(command, [*REQUIRED.get(command, []), *base])
        for key in numeric_keys(composed(command, base)):
            if owner(config, key) not in seen:
                seen.add(owner(config, key))
                cases.append((command, base, key))
    return cases


def test_the_numeric_fuzz_reaches_every_command_with_numeric_keys():
    # report and verify have no numeric key; compare nests PretrainConfig and EvalConfig
    assert {c for c, _, _ in fuzz_cases()} >= set(COMMANDS) - {"report", "compare", "verify"}


@pytest.mark.slow  # one test per command, so that xdist spreads them
@pytest.mark.parametrize("command", sorted({c for c, _, _ in fuzz_cases()}))
def test_every_numeric_key_of_every_command_validates_or_names_itself(command, capsys):
    outcomes = {0: 0, 2: 0}
    for _, base, key in (case for case in fuzz_cases() if case[0] == command):
        for value in TRIALS:
            argv = [command, "--dry-run", *REQUIRED.get(command, []), *base, f"{key}={value}"]
            code = main(argv)  # an exception here (a traceback) fails the test
            out, err = capsys.readouterr()
            assert code in outcomes, argv
            outcomes[code] += 1
            if code == 2:
                lines = err.strip().splitlines()
                assert len(lines) == 1 and lines[0].startswith(f"ia-world {command}: error: ")
                assert key.split(".")[-1] in lines[0], (argv, lines[0])
            else:  # a value that validates is printed back as it will run
                printed = OmegaConf.create(out)
                leaf = OmegaConf.select(printed, key)
                assert leaf is not None and (math.isfinite(float(leaf))), (argv, out)
    assert outcomes[0] > 0 and outcomes[2] > 0


def test_nan_inf_and_nested_ranges_are_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    for override in ("lr=nan", "lr=inf", "ema_start=nan", "grad_clip=-1", "masking.ratio=1.0",
                     "masking.ratio=0", "model.patch=7", "model.frames=15", "model.embed_dim=0",
                     "data.frame_stride=0", "data.clips_per_episode=0", "data.num_workers=-1",
                     "out=", "env.name=cradle env.id=ia_world/Gravity2D-v0"):
        assert main(["pretrain", f"out={out}", *override.split()]) == 2, override
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and override.split("=")[0].split(".")[-1] in err
    assert not out.exists()


def test_stage_functions_validate_their_config_as_the_cli_does(tmp_path):
    with pytest.raises(ConfigError, match="episodes=0"):
        generate(GenerateConfig(out=str(tmp_path / "d"), episodes=0))
    with pytest.raises(ConfigError, match="does not match name='cradle'"):
        generate(GenerateConfig(out=str(tmp_path / "d"), env=EnvConfig(
            name="cradle", id="ia_world/Gravity2D-v0")))
    assert not (tmp_path / "d").exists()
    assert EnvConfig(name="gravity2d").id == "ia_world/Gravity2D-v0"
    with pytest.raises(ConfigError, match="model.frames=16, size=64, tubelet_t=2, patch=7"):
        validate_tree(dataclasses.replace(parse("pretrain", []),
                                          model=ModelConfig(patch=7)))


def test_resumed_pretraining_with_another_config_is_refused_naming_the_keys(tmp_path):
    from ia_world.training import pretrain

    common = [f"out={tmp_path / 'run'}", "steps=2", "batch_size=2", "data.num_workers=0",
              "model.frames=4", "model.size=32", "checkpoint_every=1", "log_every=1"]
    pretrain(parse("pretrain", common))
    with pytest.raises(CheckpointError, match=r"another config \(lr: 0.0005 stored, 0.001 now"):
        pretrain(parse("pretrain", [*common, "steps=3", "lr=1e-3"]))
    pretrain(parse("pretrain", [*[c for c in common if not c.startswith("steps")], "steps=3"]))


def test_cli_end_to_end_one_line_errors_and_dry_run():
    cli = [sys.executable, "-m", "ia_world_app.cli"]
    bad = subprocess.run([*cli, "pretrain", "lr=nan"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == \
        "ia-world pretrain: error: lr=nan must be a finite number"
    typo = subprocess.run([*cli, "generate", "out=x", "env=gravity"], capture_output=True,
                          text=True)
    assert typo.returncode == 2 and "available: billiards" in typo.stderr
    key = subprocess.run([*cli, "pretrain", "model.pach=7"], capture_output=True, text=True)
    assert key.returncode == 2 and key.stderr.strip().endswith("did you mean model.patch?")
    dry = subprocess.run([*cli, "demo", "preset=micro", "--dry-run"], capture_output=True,
                         text=True)
    dry_config = OmegaConf.create(dry.stdout)
    assert dry.returncode == 0 and dry_config.preset == "micro"
    assert dry_config.compare.pretrain.steps == 2 and dry_config.world_model.world_model.steps == 2
