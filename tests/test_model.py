"""The IA-JEPA model, checkpoints and the frozen-encoder API (ia_world.load_encoder)."""

import json

import numpy as np
import pytest
import torch

import ia_world
from ia_world.checkpoint import (
    MODEL_FILE,
    resolve_checkpoint,
    save_checkpoint,
    write_initial_checkpoint,
)
from ia_world.config import as_dict
from ia_world.errors import CheckpointError, ConfigError, DataError
from ia_world.models import IAJEPA, ModelConfig, VideoEncoder, preset, split_mask
from ia_world.models.encoder import sincos_3d

SMALL_GRID = {"frames": 4, "size": 32, "embed_dim": 48, "depth": 1, "num_heads": 3,
              "pred_dim": 24, "pred_depth": 1, "pred_heads": 3}


def clips(batch, cfg, seed=0):
    """Random uint8 clips (B, T, H, W, 3) for a model config."""
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, cfg.frames, cfg.size, cfg.size, 3)
    return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)


def test_presets_grow_and_match_the_design_grid():
    tiny, small, base = preset("tiny"), preset("small"), preset("base")
    assert tiny.grid.num_tokens == 512 and tiny.grid.shape == (8, 8, 8)
    assert tiny.embed_dim < small.embed_dim < base.embed_dim
    with pytest.raises(ConfigError, match="huge"):
        preset("huge")
    with pytest.raises(ConfigError, match="num_heads"):
        ModelConfig(embed_dim=50, num_heads=3).validate()


def test_sincos_positions_are_distinct_per_token():
    table = sincos_3d(ModelConfig(**SMALL_GRID).grid, 48)  # N D
    assert table.shape == (32, 48)
    assert torch.cdist(table, table).add(torch.eye(32)).min() > 0.1


def test_split_mask_puts_context_first_and_refuses_uneven_masks():
    mask = torch.tensor([[True, False, True, False], [False, False, True, True]])
    context, target = split_mask(mask)
    assert context.tolist() == [[1, 3], [0, 1]] and target.tolist() == [[0, 2], [2, 3]]
    with pytest.raises(ValueError, match="same number"):
        split_mask(torch.tensor([[True, False], [True, True]]))


def test_split_mask_leaves_out_tokens_that_are_neither_context_nor_target():
    mask = torch.tensor([[False, True, False, True], [False, False, True, True]])
    context = torch.tensor([[True, False, False, False], [True, False, False, False]])
    context_idx, target_idx = split_mask(mask, context)
    assert context_idx.tolist() == [[0], [0]] and target_idx.tolist() == [[1, 3], [2, 3]]
    with pytest.raises(ValueError, match="both context and target"):
        split_mask(mask, ~context)
    with pytest.raises(ValueError, match="same number of context"):
        split_mask(mask, torch.tensor([[True, False, False, False], [True, True, False, False]]))


def test_context_encoder_sees_only_kept_tokens():
    cfg = ModelConfig(**SMALL_GRID)
    encoder = VideoEncoder(cfg).eval()
    frames = clips(2, cfg)
    keep = torch.tensor([[0, 5, 9], [1, 2, 30]])
    latents = encoder(frames, keep)
    assert latents.shape == (2, 3, 48)
    altered = frames.clone()
    altered[:, 2:, :, :16] = 0  # changes tokens of time step 1 only; the kept ones are at t=0
    keep_t0 = torch.tensor([[0, 5, 9], [1, 2, 15]])
    assert torch.allclose(encoder(frames, keep_t0), encoder(altered, keep_t0))
    assert not torch.allclose(encoder(frames), encoder(altered))


def test_jepa_loss_backpropagates_to_encoder_and_predictor_only():
    cfg = ModelConfig(**SMALL_GRID)
    model = IAJEPA(cfg)
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[0, :12], mask[1, 20:] = True, True
    loss, targets = model(clips(2, cfg), mask)[:2]
    loss.backward()
    assert targets.shape == (2, 12, 48) and loss.item() > 0
    assert model.encoder.patch_embed.weight.grad.abs().sum() > 0
    assert model.predictor.mask_token.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.target.parameters())
    before = model.target.patch_embed.weight.clone()
    model.update_target(0.5)
    expected = 0.5 * before + 0.5 * model.encoder.patch_embed.weight
    assert torch.allclose(model.target.patch_embed.weight, expected)


def test_a_step_reports_its_context_latents_and_the_raw_target_norm():
    """What the logs' context_norm, context_rankme_centred and target_norm are computed from."""
    cfg = ModelConfig(**SMALL_GRID)
    model = IAJEPA(cfg).eval()
    frames = clips(2, cfg)
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[:, 16:] = True  # context: time step 0, tokens 0-15
    output = model(frames, mask)
    with torch.no_grad():
        context = model.encoder(frames, keep=torch.arange(16).expand(2, 16))
        raw_targets = model.target(frames)
    assert output.context.shape == (2, 16, 48) and not output.context.requires_grad
    assert torch.allclose(output.context, context, atol=1e-6)
    assert torch.allclose(output.target_norm, raw_targets.norm(dim=-1).mean())
    # the layer-normed targets have norm sqrt(D) whatever the raw norm: the raw one is logged
    assert output.targets.norm(dim=-1).mean() == pytest.approx(48 ** 0.5, rel=1e-3)


def test_load_encoder_is_frozen_deterministic_and_shaped(tmp_path):
    write_initial_checkpoint(tmp_path, ModelConfig(**SMALL_GRID), seed=3)
    encoder = ia_world.load_encoder(tmp_path)
    encoder.train()
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())
    frames = clips(2, ModelConfig(**SMALL_GRID)).numpy()
    latents = encoder.encode(frames)
    assert latents.shape == (2, 32, 48) and encoder.embed_dim == 48
    assert encoder.grid.num_tokens == 32 and not latents.requires_grad
    assert torch.equal(latents, ia_world.load_encoder(tmp_path).encode(torch.from_numpy(frames)))
    other = tmp_path / "other"
    write_initial_checkpoint(other, ModelConfig(**SMALL_GRID), seed=4)
    assert not torch.equal(latents, ia_world.load_encoder(other).encode(frames))
    with pytest.raises(DataError, match="expected uint8"):
        encoder.encode(np.zeros((2, 4, 64, 64, 3), np.uint8))


def test_load_encoder_picks_the_target_or_the_online_encoder_weights(tmp_path):
    cfg = ModelConfig(**SMALL_GRID)
    torch.manual_seed(0)
    jepa = IAJEPA(cfg)
    with torch.no_grad():
        for weight in jepa.encoder.parameters():
            weight.add_(0.1)  # the online encoder moved on, the EMA target lags
    save_checkpoint(tmp_path, 1, jepa.state_dict(), {"model": as_dict(cfg)}, {"step": 1})
    frames = clips(2, cfg)
    with torch.no_grad():
        online, target = jepa.encoder(frames), jepa.target(frames)
    assert not torch.allclose(online, target)
    torch.testing.assert_close(ia_world.load_encoder(tmp_path, weights="encoder").encode(frames),
                               online)
    torch.testing.assert_close(ia_world.load_encoder(tmp_path).encode(frames), target)
    with pytest.raises(ConfigError, match="predictor"):
        ia_world.load_encoder(tmp_path, weights="predictor")


def test_corrupt_missing_and_mismatched_checkpoints_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        ia_world.load_encoder(tmp_path / "nowhere")
    checkpoint = resolve_checkpoint(write_initial_checkpoint(tmp_path / "a",
                                                             ModelConfig(**SMALL_GRID)))
    config = json.loads((checkpoint / "config.json").read_text())
    config["model"]["embed_dim"] = 96
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="incompatible"):
        ia_world.load_encoder(checkpoint)
    config["model"]["patch"] = "big"
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="config.json"):
        ia_world.load_encoder(checkpoint)
    checkpoint = resolve_checkpoint(write_initial_checkpoint(tmp_path / "b",
                                                             ModelConfig(**SMALL_GRID)))
    weights = checkpoint / MODEL_FILE
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=MODEL_FILE):
        ia_world.load_encoder(tmp_path / "b")
