"""Episode shards, the generator CLI, the reader, annotations, previews and the demo."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from ia_world.config import load_config, to_dataclass
from ia_world.data import EpisodeStore, load_episodes
from ia_world.data.episode import make_env, simulate_episode
from ia_world.data.generator import GenerateConfig, generate
from ia_world.data.shards import episode_seed, read_shard, shard_path
from ia_world.errors import ConfigError, DataError
from ia_world.runlock import LOCK_NAME
from ia_world_app.cli import main

TINY = ["env=billiards", "episodes=5", "shard_size=2", "frames=8", "seed=3", "preview=1"]


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (hidden temporaries included; not the run locks, which hold their
    last holder's pid) -> its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(LOCK_NAME)}


def assert_same_episode(a, b) -> None:
    np.testing.assert_array_equal(a.frames, b.frames)
    assert a.states.keys() == b.states.keys() and a.energy.keys() == b.energy.keys()
    for key in a.states:
        np.testing.assert_array_equal(a.states[key], b.states[key])
    for term in a.energy:
        np.testing.assert_array_equal(a.energy[term], b.energy[term])
    assert (a.objects, a.collisions, a.meta) == (b.objects, b.collisions, b.meta)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gen") / "data"
    assert main(["generate", *TINY, f"out={root}"]) == 0
    return root


def test_layout_and_summary(dataset, capsys):
    assert json.loads((dataset / "dataset.json").read_text())["episodes"] == 5
    assert sorted(p.name for p in (dataset / "shards").iterdir()) == [
        f"shard-0000{s}.{ext}" for s in range(3) for ext in ("safetensors", "sha256")]
    assert len(list((dataset / "annotations").iterdir())) == 5
    assert main(["generate", *TINY, f"out={dataset}"]) == 0  # complete: nothing to do
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "5 episodes" in line and "(0 new)" in line and "with >= 1 collision" in line


def test_reader_equals_simulation(dataset):
    env = make_env("ia_world/Billiards-v0", size=64, max_steps=8)
    episodes = list(load_episodes(dataset))
    assert len(episodes) == 5
    for k, episode in enumerate(episodes):
        assert_same_episode(episode, simulate_episode(env, episode_seed(3, k), 8))
    store = EpisodeStore(dataset)
    assert len(store) == 5 and store.manifest["frames"] == 8
    assert store.seed_of(4) == episode_seed(3, 4) == store[4].meta["seed"]
    assert_same_episode(store[-2], episodes[3])
    with pytest.raises(IndexError):
        store[5]


def test_episode_seed_is_a_stable_hash():
    seeds = [episode_seed(0, k) for k in range(100)]
    assert len(set(seeds)) == 100 and all(0 <= s < 2**63 for s in seeds)
    assert seeds == [episode_seed(0, k) for k in range(100)]
    assert episode_seed(1, 0) != seeds[0]


def test_resume_after_half_written_shard(dataset, tmp_path):
    """A run killed while writing shard 1: later files gone, temporaries left behind."""
    killed = tmp_path / "killed"
    shutil.copytree(dataset, killed)
    shard1 = shard_path(killed, 1)
    (shard1.parent / f".tmp-999-{shard1.name}").write_bytes(shard1.read_bytes()[:1000])
    shard1.unlink()  # its checksum sidecar (written first) stays
    for s in (2,):
        shard_path(killed, s).unlink()
        shard_path(killed, s).with_suffix(".sha256").unlink()
    for k in (3, 4):
        (killed / "annotations" / f"annotation_0000{k}.json").unlink()
    (killed / "annotations" / ".tmp-999-annotation_00003.json").write_text('{"scene_in')
    assert main(["generate", *TINY, f"out={killed}"]) == 0
    assert tree(killed) == tree(dataset)


def test_temp_whose_writer_ends_during_the_resume_is_cleared(dataset, tmp_path, monkeypatch):
    """A killed run's worker (Ray's outlive their driver) still writing when the resume starts,
    ended before it finishes: its half-written file is gone when the resume returns."""
    from ia_world.data import generator

    killed = tmp_path / "killed"
    shutil.copytree(dataset, killed)
    shard_path(killed, 2).unlink()
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    leftover = killed / "annotations" / f".tmp-{worker.pid}-annotation_00000.json"
    leftover.write_text('{"scene_in')  # shard 0 is complete: the resume does not rewrite it
    write_shards = generator.write_shards

    def worker_ends_meanwhile(*args):
        worker.kill()
        worker.wait()
        return write_shards(*args)

    monkeypatch.setattr(generator, "write_shards", worker_ends_meanwhile)
    try:
        assert main(["generate", *TINY, f"out={killed}"]) == 0
    finally:
        worker.kill()
    assert not leftover.exists() and tree(killed) == tree(dataset)


@pytest.mark.slow
def test_killed_process_resumes_to_identical_dataset(tmp_path):
    args = ["env=billiards", "episodes=24", "shard_size=2", "frames=16"]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "ia_world_app.cli", "generate", *args,
                                f"out={killed}"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not shard_path(killed, 0).exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert shard_path(killed, 0).exists() and not shard_path(killed, 11).exists()
    assert main(["generate", *args, f"out={killed}"]) == 0
    assert main(["generate", *args, f"out={reference}"]) == 0
    assert tree(killed) == tree(reference)


@pytest.mark.slow
def test_shard_split_equals_single_run(dataset, tmp_path):
    split = tmp_path / "split"
    assert main(["generate", *TINY, f"out={split}", "shard_index=0", "num_shards=2",
                 "workers=2"]) == 0
    assert not shard_path(split, 1).exists()
    with pytest.raises(DataError, match="shard-00001.safetensors"):
        EpisodeStore(split)
    assert main(["generate", *TINY, f"out={split}", "shard_index=1", "num_shards=2"]) == 0
    assert tree(split) == tree(dataset)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_shard_is_rejected(dataset, tmp_path, damage):
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    path = shard_path(copy, 1)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=str(path)):
        list(load_episodes(copy))
    with pytest.raises(DataError, match=str(path)):
        EpisodeStore(copy)[2]
    with pytest.raises(DataError, match=str(path)):
        read_shard(path)
    assert EpisodeStore(copy)[0].num_frames == 8  # other shards still readable


def test_missing_dataset_names_the_directory(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path)):
        load_episodes(tmp_path)
    with pytest.raises(DataError, match="dataset.json"):
        EpisodeStore(tmp_path / "nowhere")


def test_changed_config_is_refused(dataset, capsys):
    overrides = [*TINY, f"out={dataset}", "frames=9"]
    cfg = to_dataclass(load_config("generate", overrides, GenerateConfig), GenerateConfig)
    with pytest.raises(ConfigError, match="frames: 8 there, 9 now"):
        generate(cfg)
    assert main(["generate", *TINY, f"out={dataset}", "+env.kwargs.elastic=false"]) == 2
    assert "dataset.json was generated with another config" in capsys.readouterr().err


def test_bad_config_values_are_config_errors(tmp_path):
    for override in ("episodes=0", "shard_index=2", "env.id=ia_world/Nope-v0", "size=8"):
        cfg = load_config("generate", [f"out={tmp_path}", override], GenerateConfig)
        with pytest.raises(ConfigError):
            to_dataclass(cfg, GenerateConfig)
    assert main(["generate", "episodes=2"]) == 2  # out is mandatory


def test_annotation_follows_clevrer_schema(dataset):
    episodes = list(load_episodes(dataset))
    for k, episode in enumerate(episodes):
        ann = json.loads((dataset / "annotations" / f"annotation_{k:05d}.json").read_text())
        assert set(ann) == {"scene_index", "video_filename", "object_property",
                            "motion_trajectory", "collision"}
        assert ann["scene_index"] == k and ann["video_filename"] == f"video_{k:05d}.mp4"
        ids = [obj["id"] for obj in episode.objects]
        assert [p["object_id"] for p in ann["object_property"]] == ids
        assert all(set(p) == {"object_id", "color", "material", "shape"}
                   for p in ann["object_property"])
        assert [f["frame_id"] for f in ann["motion_trajectory"]] == list(range(8))
        for frame in ann["motion_trajectory"]:
            assert [o["object_id"] for o in frame["objects"]] == ids
            for obj in frame["objects"]:
                assert all(len(obj[key]) == 3 for key in
                           ("location", "orientation", "velocity", "angular_velocity"))
                assert obj["inside_camera_view"] is True  # billiards keeps all in view
        last = ann["motion_trajectory"][-1]["objects"][-1]["location"]
        assert last == episode.states["position"][-1, -1].tolist()
        assert [(c["object_ids"], c["frame_id"], c["location"]) for c in ann["collision"]] == [
            (c["object_ids"], c["frame"], c["position"]) for c in episode.collisions]


def test_previews_are_readable(dataset):
    assert sorted(p.name for p in (dataset / "previews").iterdir()) == [
        "video_00000.gif", "video_00000.mp4"]
    frames = list(load_episodes(dataset))[0].frames
    video = iio.imread(dataset / "previews" / "video_00000.mp4")
    gif = iio.imread(dataset / "previews" / "video_00000.gif")
    assert video.shape == gif.shape[:3] + (3,) == frames.shape
    assert np.abs(video.astype(int) - frames).mean() < 12  # lossy but the same video

