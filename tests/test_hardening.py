"""Bad input and faults end in one clear project error (CLI: exit 2) and never corrupt outputs."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ia_world.checkpoint import load_encoder, write_initial_checkpoint
from ia_world.data import generator
from ia_world.data.clevrer import CLEVREREpisodes, annotation_to_episode
from ia_world.data.generator import GenerateConfig, generate
from ia_world.data.shards import EpisodeStore, shard_path
from ia_world.data.video import probe_video, read_clip, write_video
from ia_world.errors import CheckpointError, DataError
from ia_world.eval.evaluate import split_episodes
from ia_world_app import cli
from ia_world_app.cli import parse


def one_error_line(capsys, command: str) -> str:
    """The CLI's stderr, checked to be exactly one 'ia-world <command>: error: ...' line."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"ia-world {command}: error: "), err
    return err


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """A valid mp4, its first half (truncated) and a file of random bytes (corrupt)."""
    root = tmp_path_factory.mktemp("videos")
    frames = np.random.default_rng(0).integers(0, 255, (20, 32, 32, 3), dtype=np.uint8)
    write_video(root / "good.mp4", frames, 10)
    data = (root / "good.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (root / "corrupt.mp4").write_bytes(np.random.default_rng(1).bytes(4096))
    return root


@pytest.mark.parametrize("name", ["truncated.mp4", "corrupt.mp4"])
def test_bad_video_raises_data_error_naming_file(videos, name):
    with pytest.raises(DataError, match=name):
        probe_video(videos / name)
    with pytest.raises(DataError, match=name):
        read_clip(videos / name, np.arange(16), 32)


@pytest.mark.parametrize("annotation, key", [
    ({"motion_trajectory": [], "collision": []}, "object_property"),
    ({"object_property": 5, "motion_trajectory": [], "collision": []}, "malformed"),
    ({"object_property": [{"object_id": "a", "color": "red", "material": "metal",
                           "shape": "cube"}], "motion_trajectory": [], "collision": []},
     "malformed"),
    ({"object_property": [], "motion_trajectory": [{"frame_id": 0, "objects": 3}],
      "collision": []}, "malformed"),
])
def test_bad_annotation_fields_raise_data_error_naming_source(annotation, key):
    with pytest.raises(DataError, match=f"annotation_00001.json.*{key}"):
        annotation_to_episode(annotation, source="annotation_00001.json")


@pytest.fixture(scope="module")
def short_dataset(tmp_path_factory):
    """A generated dataset of 3 episodes of 8 frames at 32x32."""
    root = tmp_path_factory.mktemp("short")
    generate(GenerateConfig(out=str(root), episodes=3, frames=8, size=32))
    return root


def test_clips_shorter_than_model_or_wrong_size_raise(short_dataset, tiny_checkpoint):
    with pytest.raises(DataError, match=str(short_dataset)):
        split_episodes(str(short_dataset), 2, 0, None, frames=16, size=64)
    encoder = load_encoder(tiny_checkpoint)
    with pytest.raises(DataError, match="expected uint8"):
        encoder.encode(np.zeros((1, 8, 64, 64, 3), np.uint8))  # too few frames
    with pytest.raises(DataError, match="expected uint8"):
        encoder.encode(np.zeros((1, 16, 32, 32, 3), np.uint8))  # wrong size


def test_empty_dataset_directories_raise(tmp_path):
    with pytest.raises(DataError, match="dataset.json"):
        EpisodeStore(tmp_path)
    with pytest.raises(DataError, match="annotation"):
        CLEVREREpisodes(tmp_path)


def test_checkpoint_from_another_config_raises(tiny_checkpoint):
    config_path = tiny_checkpoint / "config.json"
    original = config_path.read_text()
    config = json.loads(original)
    config["model"]["embed_dim"] = 2 * config["model"]["embed_dim"]
    config_path.write_text(json.dumps(config))
    try:
        with pytest.raises(CheckpointError, match=tiny_checkpoint.name):
            load_encoder(tiny_checkpoint)
    finally:
        config_path.write_text(original)


@pytest.mark.parametrize("override, key", [("episodez=3", "episodez"),
                                           ("episodes=0", "episodes"),
                                           ("frames=abc", "frames")])
def test_config_typo_or_out_of_range_is_one_line_exit_2(tmp_path, capsys, override, key):
    assert cli.main(["generate", f"out={tmp_path}", override]) == 2
    assert key in one_error_line(capsys, "generate")
    assert not any(tmp_path.iterdir())  # nothing written


def test_unwritable_output_is_one_line_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    assert cli.main(["generate", f"out={blocker}/sub", "episodes=1"]) == 2
    assert f"{blocker}/sub" in one_error_line(capsys, "generate")
    assert blocker.read_text() == "keep me"


def test_killed_generate_resumes_to_identical_shards(tmp_path, monkeypatch):
    cfg = GenerateConfig(out=str(tmp_path / "clean"), episodes=3, frames=6, size=32,
                         shard_size=1)
    generate(cfg)
    write_shard, calls = generator.write_shard, []

    def killed_on_second_shard(path, episodes, *version_and_identity):
        calls.append(path)
        if len(calls) == 2:
            path.with_name(f".tmp-999-{path.name}").write_bytes(b"half a shard")
            raise KeyboardInterrupt
        write_shard(path, episodes, *version_and_identity)

    monkeypatch.setattr(generator, "write_shard", killed_on_second_shard)
    cfg.out = str(tmp_path / "killed")
    with pytest.raises(KeyboardInterrupt):
        generate(cfg)
    first = shard_path(cfg.out, 0).read_bytes()
    assert not shard_path(cfg.out, 1).exists()
    monkeypatch.setattr(generator, "write_shard", write_shard)
    generate(cfg)
    assert shard_path(cfg.out, 0).read_bytes() == first  # untouched by the resume
    for shard in range(3):
        assert (shard_path(cfg.out, shard).read_bytes()
                == shard_path(tmp_path / "clean", shard).read_bytes())
    assert len(EpisodeStore(cfg.out)) == 3


@pytest.mark.slow
def test_killed_pretrain_resumes_the_same_run(tmp_path, monkeypatch):
    from ia_world import training

    def pretrain(out):
        return training.train(parse("pretrain", [
            "data=live", "model=tiny", "masking=random_tube", f"out={out}", "steps=3",
            "batch_size=2", "checkpoint_every=1", "log_every=1", "warmup_steps=0",
            "data.num_workers=0", "device=cpu"]))

    clean = pretrain(tmp_path / "clean")
    save, saved = training.save_checkpoint, []

    def killed_after_step_2(run_dir, step, *args, **kwargs):
        saved.append(save(run_dir, step, *args, **kwargs))
        if step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_checkpoint", killed_after_step_2)
    with pytest.raises(KeyboardInterrupt):
        pretrain(tmp_path / "killed")
    weights = (saved[-1] / "model.safetensors").read_bytes()
    monkeypatch.setattr(training, "save_checkpoint", save)
    resumed = pretrain(tmp_path / "killed")
    assert (saved[-1] / "model.safetensors").read_bytes() == weights  # step 2 left intact
    assert resumed["step"] == clean["step"] == 3
    assert resumed["loss"] == pytest.approx(clean["loss"], rel=1e-5)


def tiny_evaluate_args(run_dir) -> list[str]:
    """`ia-world evaluate` on a micro model and micro splits (seconds)."""
    return [f"ckpt={run_dir}", "train_episodes=10", "heldout_episodes=8",
            "qa.epochs=1", "qa.width=16", "horizon=4", "fixed.train_episodes=10",
            "fixed.heldout_episodes=6", "qa.min_questions=0", "collision.enabled=false"]


@pytest.fixture
def micro_run(tmp_path):
    """A fresh 8-frame 32x32 checkpoint whose metrics.json must survive faults."""
    from ia_world.checkpoint import resolve_checkpoint
    from ia_world.models import ModelConfig

    model = ModelConfig(frames=8, size=32, embed_dim=32, depth=1, num_heads=2, pred_dim=16,
                        pred_depth=1, pred_heads=2)
    write_initial_checkpoint(tmp_path / "run", model, seed=0)
    metrics = resolve_checkpoint(tmp_path / "run") / "metrics.json"
    return tmp_path / "run", metrics, metrics.read_bytes()


@pytest.mark.slow
def test_killed_evaluate_keeps_metrics_and_reruns(micro_run, monkeypatch):
    from ia_world.eval import evaluate

    run_dir, metrics, before = micro_run

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "evaluate_qa", killed)  # killed halfway through the metrics
    assert cli.main(["evaluate", *tiny_evaluate_args(run_dir)]) == 130
    assert metrics.read_bytes() == before
    monkeypatch.undo()
    assert cli.main(["evaluate", *tiny_evaluate_args(run_dir)]) == 0
    assert "eval" in json.loads(metrics.read_text())


@pytest.mark.slow
def test_full_disk_is_one_line_exit_2_and_keeps_metrics(micro_run, monkeypatch, capsys):
    import errno
    from pathlib import Path

    run_dir, metrics, before = micro_run
    write_bytes = Path.write_bytes

    def disk_full(self, data):
        write_bytes(self, data[: len(data) // 2])  # a partial write, then ENOSPC
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    assert cli.main(["evaluate", *tiny_evaluate_args(run_dir)]) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bars
    assert last_line.startswith("ia-world evaluate: error: ") and "No space left" in last_line
    assert metrics.read_bytes() == before
    assert sorted(p.name for p in metrics.parent.iterdir() if ".tmp" in p.name) == []


# ---- hardening II (issue 15) ------------------------------------------------------------------
def read_all(root) -> list:
    """Every episode of a dataset, read through the store."""
    store = EpisodeStore(root)
    return [store[k] for k in range(len(store))]


@pytest.mark.parametrize("override, key", [("+env.kwargs.bogus=1", "bogus"),
                                           ("+env.kwargs.elastic=maybe", "elastic")])
def test_bad_env_kwargs_are_refused_before_the_manifest(tmp_path, capsys, override, key):
    out = tmp_path / "data"
    args = ["generate", f"out={out}", "episodes=1", "frames=4", "size=32"]
    assert cli.main([*args, override]) == 2
    assert key in one_error_line(capsys, "generate")
    assert not out.exists()
    assert cli.main(args) == 0  # the corrected command is not refused as "another config"


def test_full_disk_without_a_file_name_names_the_file(tmp_path, monkeypatch, capsys):
    import errno

    def disk_full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")  # what a real write raises

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    assert cli.main(["generate", f"out={tmp_path}", "episodes=1", "frames=4", "size=32"]) == 2
    line = one_error_line(capsys, "generate")
    assert f"{tmp_path / 'dataset.json'}: No space left on device" in line


@pytest.mark.parametrize("edit, match", [
    (lambda m: [1, 2], "dataset.json: expected a JSON object"),
    (lambda m: dict(m, shard_size=0), "dataset.json: shard_size 0"),
    (lambda m: dict(m, shard_size=2), "shard-00000.safetensors: generated for a dataset with "
                                      "other shard_size"),
    (lambda m: dict(m, seed=5), "shard-00000.safetensors: generated for a dataset with other "
                                "seed"),
    (lambda m: dict(m, size=64), "shard-00000.safetensors: generated for a dataset with other "
                                 "size"),
])
def test_edited_manifest_is_named(tiny_dataset, edit, match):
    manifest = tiny_dataset / "dataset.json"
    manifest.write_text(json.dumps(edit(json.loads(manifest.read_text()))))
    with pytest.raises(DataError, match=match):
        read_all(tiny_dataset)


@pytest.mark.parametrize("other", ["other_seed", "px64"])
def test_foreign_shard_is_named(tiny_datasets, tiny_dataset, other):
    import shutil

    for name in ("shard-00001.safetensors", "shard-00001.sha256"):
        shutil.copy(tiny_datasets / other / "shards" / name, tiny_dataset / "shards" / name)
    store = EpisodeStore(tiny_dataset)
    assert store[0].meta["seed"] == store.seed_of(0)
    with pytest.raises(DataError, match="shard-00001.safetensors: generated for a dataset with "
                                        "other (seed|size)"):
        store[1]
    generate(GenerateConfig(out=str(tiny_dataset), episodes=3, frames=6, size=32, shard_size=1))
    seeds = [ep.meta["seed"] for ep in read_all(tiny_dataset)]
    assert seeds == [store.seed_of(k) for k in range(3)]


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00binary", b"not-a-digest  x\n"])
def test_empty_or_binary_sidecar_is_named_and_regenerated(tiny_dataset, content):
    sidecar = tiny_dataset / "shards" / "shard-00002.sha256"
    good = sidecar.read_bytes()
    sidecar.write_bytes(content)
    with pytest.raises(DataError, match="shard-00002.sha256: not a sha256 checksum file"):
        read_all(tiny_dataset)
    generate(GenerateConfig(out=str(tiny_dataset), episodes=3, frames=6, size=32, shard_size=1))
    assert sidecar.read_bytes() == good


def test_model_larger_or_longer_than_the_shards_is_one_line(tiny_datasets, tmp_path, capsys):
    args = ["pretrain", "model=tiny", f"out={tmp_path}/run", "steps=1", "batch_size=2",
            "device=cpu", "data.num_workers=2"]
    assert cli.main([*args, f"data={tiny_datasets / 'a'}"]) == 2  # 32 px, 6 frames; tiny: 64, 16
    assert "16 frames of 64x64" in one_error_line(capsys, "pretrain")
    assert cli.main([*args, f"data={tiny_datasets / 'px64'}"]) == 2  # 64 px but too short
    assert "episodes of 6 frames" in one_error_line(capsys, "pretrain")


@pytest.mark.parametrize("config", [[1], {"model": None}, {"model": "tiny"}])
def test_malformed_checkpoint_config_is_named(tiny_checkpoint, config):
    config_path = tiny_checkpoint / "config.json"
    original = config_path.read_text()
    config_path.write_text(json.dumps(config))
    try:
        with pytest.raises(CheckpointError, match="config.json"):
            load_encoder(tiny_checkpoint)
    finally:
        config_path.write_text(original)


def test_malformed_metrics_fails_before_evaluating(micro_run, monkeypatch, capsys):
    from ia_world.eval import evaluate

    run_dir, metrics, _ = micro_run
    metrics.write_text("[1]")

    def evaluated(*args, **kwargs):
        raise AssertionError("evaluated before checking metrics.json")

    monkeypatch.setattr(evaluate, "measure", evaluated)
    assert cli.main(["evaluate", *tiny_evaluate_args(run_dir)]) == 2
    assert "metrics.json: expected a JSON object" in one_error_line(capsys, "evaluate")
    assert metrics.read_text() == "[1]"


def test_rl_name_outside_out_is_refused(tmp_path, capsys):
    assert cli.main(["rl", f"out={tmp_path}/out", "name=../x", "steps=8"]) == 2
    assert "name='../x'" in one_error_line(capsys, "rl")
    assert not any(tmp_path.iterdir())


def test_a_worker_pool_in_an_unguarded_script_fails_with_one_clear_line(tmp_path):
    """Spawned workers re-import the script: without a __main__ guard they die on start."""
    script = tmp_path / "unguarded.py"
    script.write_text("from ia_world.parallel import ordered_map\n"
                      "with ordered_map(2) as run:\n    print(list(run(abs, [-1, 2])))\n")
    failed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=300)
    assert failed.returncode != 0
    assert "resource_tracker" not in failed.stderr  # the dying workers leaked no semaphores
    assert failed.stderr.strip().splitlines()[-1].startswith(
        "RuntimeError: a worker process of this 2-process pool died: a script that starts")
    script.write_text("import torch\nfrom ia_world.parallel import ordered_map\n"
                      "def threads(_):\n    return torch.get_num_threads()\n"
                      "if __name__ == '__main__':\n    with ordered_map(2) as run:\n"
                      "        print(list(run(abs, [-1, 2])), list(run(threads, [0, 1])))\n")
    guarded = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             timeout=300)
    # each worker computes on one thread, whatever the machine's core count
    assert guarded.returncode == 0 and guarded.stdout.strip() == "[1, 2] [1, 1]"
