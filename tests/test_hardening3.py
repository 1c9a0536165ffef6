"""Hardening III: one writer per run directory, fail before the work, names are names, env
kwargs validated, and the remaining bad inputs end in one line naming the file."""

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset

from agents.sb3 import IAJEPAExtractor
from envs.phyre_lite.templates import TEMPLATES, register_template
from ia_world import checkpoint as checkpoint_module
from ia_world import training
from ia_world.atomic import atomic_write_bytes
from ia_world.checkpoint import (
    CONFIG_FILE,
    LATEST_FILE,
    MODEL_FILE,
    TRAIN_INFO_FILE,
    TRAIN_STATE_FILE,
    resolve_checkpoint,
    write_initial_checkpoint,
)
from ia_world.data.clevrer import parse_question
from ia_world.errors import ConfigError, DataError, from_worker
from ia_world.eval import evaluate as evaluate_module
from ia_world.models import ModelConfig
from ia_world.runlock import LOCK_NAME
from ia_world_app import cli

SMALL = ["model.frames=4", "model.size=32", "model.embed_dim=24", "model.depth=1",
         "model.num_heads=2", "model.pred_dim=12", "model.pred_depth=1", "model.pred_heads=2",
         "masking=random_tube", "data.num_workers=0", "batch_size=2", "warmup_steps=1",
         "log_every=1", "device=cpu", "steps=2"]
PAUSED_PRETRAIN = """
import sys, time
from pathlib import Path
from ia_world import training
from ia_world_app import cli
loop = training.pretrain_loop
def paused(*args, **kwargs):  # holds the lock until the test says go
    while not Path(sys.argv[1]).exists():
        time.sleep(0.05)
    return loop(*args, **kwargs)
training.pretrain_loop = paused
sys.exit(cli.main(["pretrain", *sys.argv[2:]]))
"""


def env_with_path() -> dict[str, str]:
    """The environment of a child process that imports this worktree's code."""
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


def loss_columns(run: Path) -> list[str]:
    """log.csv without its timing columns (clips_per_s, data_s, compute_s)."""
    return [",".join(line.split(",")[:7]) for line in (run / training.LOG_FILE).read_text()
            .splitlines()]


@pytest.mark.slow  # three pretraining processes (~15 s idle, more on a loaded machine)
def test_second_pretrain_on_one_out_stops_with_one_line_and_the_first_is_unharmed(tmp_path):
    shared, lone, go = tmp_path / "shared", tmp_path / "lone", tmp_path / "go"
    first = subprocess.Popen([sys.executable, "-c", PAUSED_PRETRAIN, str(go), *SMALL,
                              f"out={shared}"], env=env_with_path(), stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 120
        while not ((shared / LOCK_NAME).is_file()
                   and (shared / LOCK_NAME).read_text().strip() == str(first.pid)):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-m", "ia_world_app.cli", "pretrain", *SMALL,
                                 f"out={shared}"], env=env_with_path(), capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 2
        err = second.stderr.strip().splitlines()
        assert len(err) == 1 and f"pid {first.pid}" in err[0] and str(shared) in err[0], err
        assert not (shared / training.LOG_FILE).exists()  # the second wrote nothing
    finally:
        go.touch()
        assert first.wait(timeout=300) == 0, first.stderr.read()
    assert cli.main(["pretrain", *SMALL, f"out={lone}"]) == 0
    assert ((resolve_checkpoint(shared) / MODEL_FILE).read_bytes()
            == (resolve_checkpoint(lone) / MODEL_FILE).read_bytes())
    assert loss_columns(shared) == loss_columns(lone)
    assert not [p for p in shared.rglob(".tmp-*")]  # no temporaries left behind


def one_error_line(capsys, command: str) -> str:
    """The CLI's stderr, checked to be exactly one 'ia-world <command>: error: ...' line."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"ia-world {command}: error: "), err
    return err


def refuse_work(*args, **kwargs):
    """Stands in for a stage's work: reaching it means out= was not checked first."""
    raise AssertionError("the work started before out= was checked")


@pytest.mark.parametrize("command, work, args", [
    ("generate", "ia_world.data.generator.generate_share", []),
    ("pretrain", "ia_world.training.pretrain_loop", []),
    ("evaluate", "ia_world.eval.evaluate.measure", ["ckpt=nowhere"]),
    ("world_model", "agents.world_model.train_and_save", ["features=state"]),
    ("rl", "agents.rl.train", ["steps=512", "n_envs=1", "episode_steps=64"]),
    ("solve", "agents.solve.solve_tasks", []),
    ("surprise", "agents.surprise.load_encoder", ["encoder=.", "world_model=."]),
    ("report", "ia_world.report.read_eval", ["runs=[somewhere]"]),
    ("compare", "ia_world_app.compare.pretrain", []),
    ("demo", "ia_world_app.demo.generate_split", [])])
def test_out_a_file_fails_before_any_work(tmp_path, capsys, monkeypatch, command, work, args):
    file = tmp_path / "a-file"
    file.write_text("keep me")
    module, name = work.rsplit(".", 1)
    monkeypatch.setattr(importlib.import_module(module), name, refuse_work)
    assert cli.main([command, f"out={file}", *args]) == 2
    assert f"out={file} is a file" in one_error_line(capsys, command)
    assert file.read_text() == "keep me"


@pytest.mark.parametrize("command, args, expected", [
    ("generate", ["+bogus=1", "out=x"], "unknown key bogus"),
    ("generate", ["+bogus.nested=1", "out=x"], "unknown key bogus"),
    ("pretrain", ["+bogus=1"], "unknown key bogus"),
    ("pretrain", ["+env.radius=1"], "unknown key env.radius"),
    ("pretrain", ["regime=nosuch"], "regime=nosuch: no such option; available: cpu"),
    ("compare", ["regime@pretrain=nosuch"], "no such option; available: cpu"),
    ("compare", ["seeds=[0,-1]"], "seeds[1]=-1 is out of range")])
def test_bad_additions_and_options_are_refused_with_one_line(capsys, command, args, expected):
    assert cli.main([command, *args, "--dry-run"]) == 2
    assert expected in one_error_line(capsys, command)


def test_additions_inside_dict_fields_are_accepted():
    config = cli.parse("generate", ["+env.kwargs.speed=[1.0,2.0]", "out=x"])
    assert config.env.kwargs == {"speed": [1.0, 2.0]}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny pretraining run of one step (checkpoint with train state, log.csv)."""
    out = tmp_path_factory.mktemp("run") / "run"
    assert cli.main(["pretrain", *SMALL, "steps=1", f"out={out}"]) == 0
    return out


@pytest.fixture
def copy(run, tmp_path) -> Path:
    """A fresh copy of the tiny run to tamper with."""
    return Path(shutil.copytree(run, tmp_path / "run"))


def tamper_config_masking(run: Path) -> None:
    path = resolve_checkpoint(run) / CONFIG_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "masking": "interaction"}))


def tamper_config_binary(run: Path) -> None:
    (resolve_checkpoint(run) / CONFIG_FILE).write_bytes(b"\xff\xfe\x00garbage")


def tamper_latest_binary(run: Path) -> None:
    (run / LATEST_FILE).write_bytes(b"\xff\xfe\x00garbage")


def tamper_latest_outside(run: Path) -> None:
    (run / LATEST_FILE).write_text(json.dumps({"checkpoint": "../../elsewhere"}))


def tamper_weights_nan(run: Path) -> None:
    path = resolve_checkpoint(run) / MODEL_FILE
    tensors = load_file(path)
    name = sorted(k for k in tensors if k.startswith("target."))[0]  # what evaluate loads
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, path)


@pytest.mark.parametrize("tamper, expected", [
    (tamper_config_masking, "config.json: not a valid pretraining config"),
    (tamper_config_binary, "config.json: unreadable"),
    (tamper_latest_binary, "latest: corrupt pointer"),
    (tamper_latest_outside, "latest: points outside its run directory"),
    (tamper_weights_nan, "model.safetensors: non-finite weights")])
def test_tampered_checkpoint_fails_before_evaluation_naming_the_file(copy, capsys, monkeypatch,
                                                                     tamper, expected):
    tamper(copy)
    for stage in ("initial_encoder", "split_episodes"):  # the work after the checks
        monkeypatch.setattr(evaluate_module, stage, refuse_work)
    assert cli.main(["evaluate", f"ckpt={copy}"]) == 2
    assert expected in one_error_line(capsys, "evaluate")


def tamper_train_state(run: Path) -> None:
    path = resolve_checkpoint(run) / TRAIN_STATE_FILE
    save_file({k: v for k, v in load_file(path).items() if k != "rng.torch"}, path)


def tamper_train_info(run: Path) -> None:
    (resolve_checkpoint(run) / TRAIN_INFO_FILE).write_text(json.dumps({"step": 1}))


def tamper_log(run: Path) -> None:
    (run / training.LOG_FILE).write_bytes(b"\x00\x01garbage\nno,step,here\n1,2\n")


@pytest.mark.parametrize("tamper, expected", [
    (tamper_train_state, "train_state.safetensors (with train_state.json): cannot restore"),
    (tamper_train_info, "train_state.safetensors (with train_state.json): cannot restore"),
    (tamper_config_binary, "config.json: unreadable"),
    (tamper_log, "log.csv: not this run's log")])
def test_tampered_run_refuses_to_resume_with_one_line(copy, capsys, tamper, expected):
    tamper(copy)
    assert cli.main(["pretrain", *SMALL, f"out={copy}"]) == 2
    assert expected in one_error_line(capsys, "pretrain")


def test_full_disk_while_checkpointing_is_one_line_and_keeps_the_last_checkpoint(
        copy, capsys, monkeypatch):
    before = resolve_checkpoint(copy)

    def full(tensors, path, *args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(No space left on device)")

    monkeypatch.setattr(checkpoint_module, "save_file", full)
    assert cli.main(["pretrain", *SMALL, f"out={copy}"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after tqdm's progress bar
    assert last.startswith("ia-world pretrain: error: ") and "model.safetensors: cannot write" \
        in last and "No space left on device" in last
    assert resolve_checkpoint(copy) == before and (before / MODEL_FILE).is_file()


def test_template_names_are_plain_names_and_nothing_escapes_out(tmp_path):
    def build(rng):
        return []

    for name in ("../x", "a/b", ".hidden", "", "x" * 101):
        with pytest.raises(ValueError, match="not a plain name"):
            register_template(name, build)
    with pytest.raises(ValueError, match="checked_variants=-1"):
        register_template("fine_name", build, checked_variants=-1)
    with pytest.raises(ValueError, match="template 'fine_name': variant 0 cannot be built"):
        register_template("fine_name", lambda rng: [1])
    assert "fine_name" not in TEMPLATES
    root = tmp_path / "out"
    with pytest.raises(ValueError, match="outside"):
        atomic_write_bytes(root / ".." / "x.mp4", b"", root=root)
    with pytest.raises(ConfigError, match="plain name"):
        cli.parse("rl", ["name=../up", "steps=512", "n_envs=1", "episode_steps=64"])
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("env_id, kwargs, name", [
    ("ia_world/Tabletop3D-v0", {"num_objects": [6, 3]}, "num_objects"),
    ("ia_world/Drop3D-v0", {"spread": float("nan")}, "spread"),
    ("ia_world/PushBall-v0", {"max_force": float("nan")}, "max_force"),
    ("ia_world/Billiards-v0", {"max_steps": -5}, "max_steps"),
    ("ia_world/PushBall-v0", {"ball_radius": -1}, "ball_radius"),
    ("ia_world/Billiards-v0", {"num_balls": "ab"}, "num_balls"),
    ("ia_world/Billiards-v0", {"speed": [1, float("inf")]}, "speed"),
    ("ia_world/Cradle-v0", {"frame_skip": 0}, "frame_skip"),
    ("ia_world/Drop3D-v0", {"camera_eye": [0, 0]}, "camera_eye"),
    ("ia_world/PushBall3D-v0", {"arena": -1.0}, "arena"),
    ("ia_world/PhyreLite-v0", {"task": 5}, "task")])
def test_env_constructors_validate_their_kwargs(env_id, kwargs, name):
    with pytest.raises(ValueError, match=f"^{re.escape(name)} must be"):
        gym.make(env_id, **kwargs)


def test_generate_refuses_bad_env_kwargs_before_writing_anything(tmp_path, capsys):
    out = tmp_path / "data"
    assert cli.main(["generate", "env=tabletop3d", "+env.kwargs.num_objects=[6,3]",
                     f"out={out}", "episodes=1"]) == 2
    assert "num_objects" in one_error_line(capsys, "generate")
    assert not out.exists()


@pytest.mark.parametrize("options, expected", [
    ({"task": 5}, "task must be"), ({"task": "nosuch:1"}, "unknown PHYRE-Lite template"),
    ({"bogus": 1}, "unknown \\['bogus'\\]"), ({"record": "yes"}, "record")])
def test_phyre_lite_reset_validates_its_options(options, expected):
    env = gym.make("ia_world/PhyreLite-v0", size=32)
    with pytest.raises(ValueError, match=expected):
        env.reset(options=options)


def test_sb3_extractor_rejects_non_finite_observations(tmp_path):
    checkpoint = write_initial_checkpoint(tmp_path / "ckpt", ModelConfig(
        frames=4, size=32, embed_dim=24, depth=1, num_heads=2, pred_dim=12, pred_depth=1,
        pred_heads=2))
    space = gym.spaces.Box(0.0, 1.0, (6, 32, 32), np.float32)
    extractor = IAJEPAExtractor(space, checkpoint=checkpoint, normalized_images=True)
    observation = torch.rand(2, 6, 32, 32)
    assert torch.isfinite(extractor(observation)).all()
    observation[1, 0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="non-finite"):
        extractor(observation)


def test_rl_plot_names_a_bad_run_file(tmp_path, capsys):
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{not json")
    assert cli.main(["rl", f"plot=[{run}]", f"out={tmp_path / 'plots'}"]) == 2
    assert "run.json: unreadable" in one_error_line(capsys, "rl")
    (run / "run.json").write_text(json.dumps({"label": "cnn", "config": {"seed": 0}}))
    (run / "0.monitor.csv").write_text('#{"t_start": 0}\nr,l,t\nabc,def\n')
    assert cli.main(["rl", f"plot=[{run}]", f"out={tmp_path / 'plots'}"]) == 2
    assert "0.monitor.csv: not an SB3 monitor file" in one_error_line(capsys, "rl")


class BadClips(Dataset):
    """A dataset whose items fail as a truncated video does: one DataError naming the file."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        raise DataError("clips/video_00001.mp4: truncated or corrupt video")


def test_dataloader_worker_error_is_the_original_line():
    loader = DataLoader(BadClips(), batch_size=2, num_workers=1)
    with pytest.raises(DataError) as caught:
        next(iter(loader))
    assert len(str(caught.value).splitlines()) > 1  # torch wraps it with the worker traceback
    error = from_worker(caught.value)
    assert type(error) is DataError
    assert str(error) == "clips/video_00001.mp4: truncated or corrupt video"


@pytest.mark.parametrize("scene, raw, expected", [
    ({"scene_index": "abc"}, {"question_type": "descriptive", "question": "q"}, "scene_index"),
    ({"scene_index": 1}, {"question_type": "predictive", "question": "q", "choices": 5},
     "choices: expected a list"),
    ({"scene_index": 1}, {"question_type": "predictive", "question": "q", "choices": [5]},
     r"choices\[0\]: expected an object")])
def test_clevrer_question_fields_name_the_file(scene, raw, expected):
    with pytest.raises(DataError, match=f"questions/validation.json: \\[0\\]\\[0\\].*{expected}"):
        parse_question(raw, scene, "questions/validation.json: [0][0]")


@pytest.mark.slow
def test_rl_surprise_and_verify_write_nothing_outside_out(tmp_path, monkeypatch, tiny_dataset,
                                                          tiny_checkpoint, tiny_world_model):
    """The temp-tree diff for the commands the demo does not run: rl, surprise, verify --repair
    write only under their out= (or the dataset they repair), never in the working directory."""
    work, outs = tmp_path / "cwd", tmp_path / "outs"
    work.mkdir()
    monkeypatch.chdir(work)
    before = {p.relative_to(tiny_dataset): p.read_bytes() for p in tiny_dataset.rglob("*")
              if p.is_file() and p.name != LOCK_NAME}
    assert cli.main(["rl", f"encoder={tiny_checkpoint}", "env=ia_world/PushBall-v0", "size=64",
                     "steps=64", "n_envs=1", "frame_stack=2", "episode_steps=16",
                     "ppo.n_steps=32", "ppo.batch_size=16", "ppo.n_epochs=1",
                     f"out={outs / 'rl'}"]) == 0
    assert cli.main(["surprise", f"encoder={tiny_checkpoint}", f"world_model={tiny_world_model}",
                     "pairs=2", "windows=3", f"out={outs / 'surprise'}"]) == 0
    assert cli.main(["verify", f"path={tiny_dataset}", "repair=true"]) == 0
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in outs.iterdir()) == ["rl", "surprise"]
    after = {p.relative_to(tiny_dataset): p.read_bytes() for p in tiny_dataset.rglob("*")
             if p.is_file() and p.name != LOCK_NAME}
    assert after.keys() == before.keys()  # a dataset that verifies is left as it was
    assert all(after[name] == data for name, data in before.items())
