"""Clip datasets, the live source and the pretraining loop (resume, divergence guard, DDP)."""

import csv
import json
import math
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

import ia_world
from ia_world import training
from ia_world.checkpoint import resolve_checkpoint
from ia_world.config import load_config, to_dataclass
from ia_world.data.clips import ClipDataset
from ia_world.data.episode import make_env, simulate_episode
from ia_world.data.live import LiveClips
from ia_world.data.shards import EpisodeStore, read_shard, shard_path, write_shard
from ia_world.errors import CheckpointError, DataError
from ia_world.masking.saliency import SALIENCY
from ia_world.models import IAJEPA
from ia_world_app.cli import run_command

BILLIARDS = "ia_world/Billiards-v0"
SMALL_MODEL = ["model.frames=4", "model.size=32", "model.embed_dim=48", "model.depth=1",
               "model.num_heads=3", "model.pred_dim=24", "model.pred_depth=1",
               "model.pred_heads=3"]


def pretrain_config(out, *overrides):
    """A tiny CPU pretraining config composed through Hydra like the CLI does."""
    items = training.preprocess_overrides([
        *SMALL_MODEL, "masking=random_tube", "data.num_workers=0", "batch_size=4",
        "warmup_steps=2", "lr=1e-3", "log_every=1", "device=cpu", f"out={out}", *overrides])
    schema = training.PretrainConfig
    return to_dataclass(load_config("pretrain", items, schema), schema)


def logged(out, key="loss"):
    """A column of the run's CSV log."""
    with (out / training.LOG_FILE).open() as handle:
        return [float(row[key]) for row in csv.DictReader(handle)]


def test_schedules_warm_up_decay_and_anneal_the_momentum():
    cfg = training.PretrainConfig(steps=100, warmup_steps=10, lr=1e-3, final_lr=1e-5)
    lrs = [training.learning_rate(cfg, step) for step in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and max(lrs) == pytest.approx(1e-3)
    assert lrs.index(max(lrs)) == 9 and lrs[-1] == pytest.approx(1e-5, abs=1e-6)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert training.ema_momentum(cfg, 0) == 0.996 and training.ema_momentum(cfg, 100) == 1.0


def test_clip_dataset_aligns_frames_and_energy():
    env = make_env(BILLIARDS, size=32)
    store = [simulate_episode(env, seed, 12) for seed in (1, 2)]
    store[1].energy = None
    clips = ClipDataset(store, num_frames=4, frame_stride=2, clips_per_episode=3)
    assert len(clips) == 6
    starts = [clips[i]["start"] for i in range(3)]
    assert starts == [0, 2, 5]
    item = clips[2]
    assert item["frames"].shape == (4, 32, 32, 3) and item["frames"].dtype == torch.uint8
    np.testing.assert_array_equal(item["frames"].numpy(), store[0].frames[5:12:2])
    np.testing.assert_allclose(item["energy_total"].numpy(), store[0].energy["total"][5:12:2],
                               rtol=1e-6)
    assert clips[4]["episode"] == 1 and torch.isnan(clips[4]["energy_kinetic"]).all()


def test_live_source_never_repeats_across_workers_ranks_and_epochs():
    def episodes(num_workers, rank=0, epoch=0, batches=3):
        live = LiveClips(BILLIARDS, num_frames=2, size=32, seed=5, block=2, rank=rank,
                         world_size=2)
        live.set_epoch(epoch)
        loader = iter(DataLoader(live, batch_size=2, num_workers=num_workers))
        items = [next(loader) for _ in range(batches)]
        frames = torch.cat([b["frames"] for b in items])
        return [int(i) for b in items for i in b["episode"]], frames

    ids, frames = episodes(num_workers=2)
    assert ids == episodes(num_workers=0)[0]  # same order whatever the worker count
    assert len(set(ids)) == 6
    flat = frames.flatten(1).float()
    assert torch.cdist(flat, flat).add(torch.eye(6) * 1e9).min() > 0  # distinct episodes
    others = episodes(1, rank=1)[0] + episodes(1, epoch=1)[0]
    assert not set(ids) & set(others) and len(set(others)) == 12


def test_loss_falls_and_rank0_writes_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "run"
    metrics = training.train(pretrain_config(out, "steps=30", "checkpoint_every=30"))
    losses = logged(out)
    assert len(losses) == 30 and metrics["step"] == 30
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert all(math.isfinite(x) and x > 0 for x in logged(out, "rankme"))
    encoder = ia_world.load_encoder(out)
    assert encoder.encode(torch.zeros(1, 4, 32, 32, 3, dtype=torch.uint8)).shape == (1, 32, 48)


def train_killed_at(monkeypatch, cfg, step: int) -> None:
    """Train cfg until the log row of `step` is written, then stop as a kill would."""
    write_row = training.write_log_row

    def killed(path, row):
        if row["step"] == step:
            raise KeyboardInterrupt
        write_row(path, row)

    with monkeypatch.context() as patch:
        patch.setattr(training, "write_log_row", killed)
        with pytest.raises(KeyboardInterrupt):
            training.train(cfg)


@pytest.mark.parametrize("options", [(), ("regularizer=sigreg", "masking=interaction",
                                          "masking.future=0.5")])
def test_resume_after_a_kill_reproduces_the_uninterrupted_curve(tmp_path, monkeypatch, options):
    args = ("steps=8", "checkpoint_every=4", *options)
    training.train(pretrain_config(tmp_path / "whole", *args))
    train_killed_at(monkeypatch, pretrain_config(tmp_path / "killed", *args), 6)
    assert resolve_checkpoint(tmp_path / "killed").name == "step-00000004"
    training.train(pretrain_config(tmp_path / "killed", *args))
    assert logged(tmp_path / "killed") == logged(tmp_path / "whole")
    assert len(logged(tmp_path / "whole")) == 8


def test_divergence_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    forward, calls = IAJEPA.forward, []

    def nan_from_step_4(self, frames, mask, token_weight=None, context=None):
        calls.append(1)
        output = forward(self, frames, mask, token_weight, context)
        return output._replace(loss=output.loss * math.nan) if len(calls) >= 4 else output

    monkeypatch.setattr(IAJEPA, "forward", nan_from_step_4)
    out = tmp_path / "run"
    with pytest.raises(training.DivergenceError, match="step 4"):
        training.train(pretrain_config(out, "steps=6", "checkpoint_every=2"))
    assert resolve_checkpoint(out).name == "step-00000002"
    latents = ia_world.load_encoder(out).encode(torch.zeros(1, 4, 32, 32, 3, dtype=torch.uint8))
    assert torch.isfinite(latents).all()


def test_pretrain_cli_reads_a_shard_directory(tmp_path):
    data = tmp_path / "data"
    run_command("generate", [f"out={data}", "episodes=3", "frames=8", "size=32"])
    out = tmp_path / "run"
    cfg = pretrain_config(out, f"data={data}", "steps=2", "data.clips_per_episode=2")
    assert cfg.data.source == "shards" and cfg.data.path == str(data)
    assert training.train(cfg)["step"] == 2 and len(logged(out)) == 2


def ddp_worker(rank, world_size, port, out):
    """One torchrun-like rank: env vars as torchrun sets them, then train."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    training.train(pretrain_config(out, "steps=3", "checkpoint_every=3", "batch_size=2"))
    model_sum = sum(float(p.sum()) for p in ia_world.load_encoder(out).parameters())
    (out / f"rank{rank}.txt").write_text(repr(model_sum))


@pytest.mark.slow
def test_two_process_ddp_trains_and_rank0_checkpoints_once(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "run"
    mp.spawn(ddp_worker, args=(2, port, out), nprocs=2, join=True)
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000003"]
    assert len(logged(out)) == 3
    assert (out / "rank0.txt").read_text() == (out / "rank1.txt").read_text()


def test_masks_are_built_in_the_loader_workers_and_do_not_depend_on_them(tmp_path):
    masks = []
    for workers in (0, 2):
        cfg = pretrain_config(tmp_path / f"w{workers}", "masking=interaction",
                              f"data.num_workers={workers}")
        loader = training.make_loader(cfg, training.make_mask_fn(cfg.masking), 0, 0, 1)
        batches = iter(loader)
        masks.append(torch.cat([next(batches)["mask"] for _ in range(3)]))
    hidden = round(cfg.masking.ratio * cfg.model.grid.num_tokens)
    assert masks[0].dtype == torch.bool and (masks[0].sum(1) == hidden).all()
    assert torch.equal(masks[0], masks[1])


def test_the_regimes_batches_keep_one_context_time_step(tmp_path):
    """regime=cpu's fix for the fall (docs/results/single-step-context.md): every clip's context
    is its first token time step; every later token is a target."""
    cfg = pretrain_config(tmp_path / "run", "regime=cpu", "masking=interaction")
    batch = next(iter(training.make_loader(cfg, training.make_mask_fn(cfg.masking), 0, 0, 1)))
    first_step = cfg.model.grid.token_steps() == 0                                  # N
    assert torch.equal(batch["mask"], ~first_step.expand_as(batch["mask"]))
    assert torch.equal(batch["context"], first_step.expand_as(batch["mask"]))


def test_target_share_batches_train_on_context_and_chosen_targets_only(tmp_path):
    """masking.target_share=0.5 under regime=cpu: the context stays the first token time step,
    half the later tokens are targets, the rest neither, and a training step predicts exactly
    those targets (the step's target_idx)."""
    cfg = pretrain_config(tmp_path / "run", "regime=cpu", "masking=interaction",
                          "masking.target_share=0.5")
    batch = next(iter(training.make_loader(cfg, training.make_mask_fn(cfg.masking), 0, 0, 1)))
    grid = cfg.model.grid
    first_step = (grid.token_steps() == 0).expand_as(batch["mask"])                # B N
    later = grid.num_tokens - int(first_step[0].sum())
    assert torch.equal(batch["context"], first_step)
    assert (batch["mask"].sum(1) == later // 2).all() and not (batch["mask"] & first_step).any()
    model = IAJEPA(cfg.model)
    output = model(batch["frames"], batch["mask"], context=batch["context"])
    chosen = batch["mask"].nonzero()[:, 1].view(len(batch["mask"]), -1)            # B Nt
    assert torch.equal(output.target_idx, chosen)


def stored_saliency_dataset(root):
    """A 3-episode shard dataset of 8 frames at 32 px (its shards store the saliency)."""
    run_command("generate", [f"out={root}", "episodes=3", "frames=8", "size=32"])
    return root


def test_training_samples_masks_from_the_stored_saliency(tmp_path, monkeypatch):
    data = stored_saliency_dataset(tmp_path / "data")
    episode = EpisodeStore(data)[0]
    assert set(episode.saliency) == {"motion", "accel", "interaction"}
    args = (f"data={data}", "masking=interaction", "data.clips_per_episode=2", "steps=2")
    masks = {}
    for stored in ("true", "false"):
        cfg = pretrain_config(tmp_path / stored, *args, f"masking.stored={stored}")
        batches = iter(training.make_loader(cfg, training.make_mask_fn(cfg.masking), 0, 0, 1))
        masks[stored] = torch.cat([next(batches)["mask"] for _ in range(2)])
    assert torch.equal(masks["true"], masks["false"])

    def no_live_saliency(clip, grid):
        raise AssertionError("saliency computed at training time")

    monkeypatch.setitem(SALIENCY, "interaction", no_live_saliency)
    out = tmp_path / "run"
    training.train(pretrain_config(out, *args))
    assert all(x >= 0 for x in logged(out, "data_s")) and min(logged(out, "compute_s")) > 0
    assert all(math.isfinite(x) and x >= 1 for x in logged(out, "rankme_centred"))


def test_shards_without_stored_saliency_still_train(tmp_path):
    data = stored_saliency_dataset(tmp_path / "data")
    path = shard_path(data, 0)
    episodes = read_shard(path)
    for episode in episodes:
        episode.saliency = None  # a shard written before the saliency was stored
    write_shard(path, list(enumerate(episodes)))
    assert EpisodeStore(data)[1].saliency is None
    out = tmp_path / "run"
    training.train(pretrain_config(out, f"data={data}", "masking=accel", "steps=2"))
    assert len(logged(out)) == 2


@pytest.mark.parametrize("damage", ["shape", "nan"])
def test_corrupt_or_misshaped_stored_saliency_names_the_shard(tmp_path, damage):
    data = stored_saliency_dataset(tmp_path / "data")
    path = shard_path(data, 0)
    episodes = read_shard(path)
    motion = episodes[1].saliency["motion"]
    episodes[1].saliency["motion"] = motion[:-1] if damage == "shape" else motion * np.nan
    write_shard(path, list(enumerate(episodes)))  # a valid checksum over bad saliency
    with pytest.raises(DataError, match="shard-00000.safetensors.*saliency motion"):
        EpisodeStore(data)[1]
    cfg = pretrain_config(tmp_path / "run", f"data={data}", "masking=motion", "steps=1")
    with pytest.raises(DataError, match="shard-00000"):
        training.train(cfg)


def test_sigreg_prevents_the_collapse_of_a_run_built_to_collapse(tmp_path):
    # no EMA (momentum 0: the target is the online encoder), l2 loss and a huge lr: without a
    # regularizer the encoder maps every token to one vector (target std ~0.02, RankMe ~1.5)
    args = ("steps=60", "ema_start=0", "ema_end=0", "lr=0.01", "loss=l2", "log_every=20")
    final = {}
    for regularizer in ("none", "sigreg"):
        out = tmp_path / regularizer
        training.train(pretrain_config(out, f"regularizer={regularizer}", *args))
        final[regularizer] = logged(out, "target_std")[-1], logged(out, "rankme")[-1]
    assert final["none"][0] < 0.1 and final["none"][1] < 2.5  # collapsed
    assert final["sigreg"][0] > 0.5 and final["sigreg"][1] > 4  # not collapsed


def test_a_run_checkpointed_before_the_issue_13_keys_still_resumes(tmp_path):
    out = tmp_path / "run"
    training.train(pretrain_config(out, "steps=2", "checkpoint_every=2"))
    config_file = resolve_checkpoint(out) / "config.json"
    config = json.loads(config_file.read_text())
    for key in ("regularizer", "regularizer_weight"):
        del config[key]
    del config["masking"]["future"], config["masking"]["stored"]
    config_file.write_text(json.dumps(config))
    assert training.train(pretrain_config(out, "steps=3", "checkpoint_every=2"))["step"] == 3
    with pytest.raises(CheckpointError, match="regularizer"):
        training.train(pretrain_config(out, "steps=4", "regularizer=sigreg"))
