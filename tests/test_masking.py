"""Masking strategies: exact counts, determinism, interaction vs motion, fallback, metrics."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from sklearn.metrics import roc_auc_score

from ia_world.config import as_dict, load_config, to_dataclass
from ia_world.data.episode import make_env, simulate_episode
from ia_world.errors import ConfigError
from ia_world.eval.evaluate import mask_report
from ia_world.eval.mask_metrics import episode_batch, hit_rate, selectivity
from ia_world.masking import STRATEGIES, MaskConfig, make_mask_fn, num_hidden, saliency
from ia_world.masking.flow import block_flow
from ia_world.masking.saliency import clip_saliency, episode_saliency
from ia_world.tokens import TokenGrid

GRID = TokenGrid(frames=16, size=64, tubelet_t=2, patch=8)
BACKGROUND = (235, 235, 225)


def draw_square(frame: np.ndarray, x: int, y: int, color, side: int = 8) -> None:
    """Paint a side x side square with its top-left corner at column x, row y."""
    frame[y: y + side, x: x + side] = color


def glide_and_bounce_clip() -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """A red square gliding at 2 px/frame and a blue one bouncing off a wall at frame 6.

    Returns the clip (1, T, H, W, 3) and bool (N,) masks of the bounce and the glider tokens.
    """
    frames = np.empty((GRID.frames, GRID.size, GRID.size, 3), np.uint8)
    frames[:] = BACKGROUND
    frames[:, :, 60:] = (20, 20, 20)  # the wall
    glider = np.zeros(GRID.num_tokens, bool)
    for t in range(GRID.frames):
        glide_x = 4 + 2 * t
        draw_square(frames[t], glide_x, 8, (220, 50, 50))
        bounce_x = 40 + 2 * t if t <= 6 else 52 - 2 * (t - 6)
        draw_square(frames[t], bounce_x, 40, (50, 90, 230))
        for x in (glide_x, glide_x + 7):
            glider[GRID.token_of(t, x, 8)] = glider[GRID.token_of(t, x, 15)] = True
    bounce = np.zeros(GRID.num_tokens, bool)
    for t in (5, 6, 7):
        for x in (52, 59):
            bounce[GRID.token_of(t, x, 40)] = bounce[GRID.token_of(t, x, 47)] = True
    return torch.from_numpy(frames)[None], bounce, glider


def random_clip(batch: int = 3, seed: int = 0) -> torch.Tensor:
    """Noise clips uint8 (B, T, H, W, 3)."""
    rng = np.random.default_rng(seed)
    shape = (batch, GRID.frames, GRID.size, GRID.size, 3)
    return torch.from_numpy(rng.integers(0, 256, shape, dtype=np.uint8))


@pytest.fixture(scope="module")
def billiards():
    """Eight generated Billiards clips (5 balls) with their collision and moving tokens."""
    env = make_env("ia_world/Billiards-v0", num_balls=(5, 5))
    episodes = [simulate_episode(env, seed, GRID.frames) for seed in range(8)]
    return episode_batch(episodes, GRID)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("ratio", [0.05, 0.4, 0.9])
def test_every_strategy_hides_exactly_round_ratio_n(strategy, ratio):
    mask = make_mask_fn(MaskConfig(strategy=strategy, ratio=ratio))(
        random_clip(), GRID, torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and mask.shape == (3, GRID.num_tokens)
    assert (mask.sum(1) == round(ratio * GRID.num_tokens)).all()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_deterministic_for_a_seed_and_varies_across_seeds(strategy):
    mask_fn = make_mask_fn(MaskConfig(strategy=strategy))
    clip, _, _ = glide_and_bounce_clip()
    clip = clip.repeat(2, 1, 1, 1, 1)
    first = mask_fn(clip, GRID, torch.Generator().manual_seed(1))
    again = mask_fn(clip, GRID, torch.Generator().manual_seed(1))
    other = mask_fn(clip, GRID, torch.Generator().manual_seed(2))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert not torch.equal(first[0], first[1])  # each clip of a batch draws its own mask


def test_interaction_ranks_bounce_above_glide_while_motion_does_not():
    clip, bounce, glider = glide_and_bounce_clip()

    def auroc(strategy):
        scores = saliency(strategy, clip, GRID)[0].numpy()
        labels = np.concatenate([np.ones(bounce.sum()), np.zeros(glider.sum())])
        return roc_auc_score(labels, np.concatenate([scores[bounce], scores[glider]]))

    assert auroc("interaction") > 0.95
    assert auroc("motion") < 0.75
    scores = saliency("interaction", clip, GRID)[0]
    assert scores[torch.from_numpy(bounce)].min() > scores[torch.from_numpy(glider)].max()


@pytest.mark.parametrize("strategy", ["accel", "interaction", "motion"])
def test_static_clip_falls_back_to_random_tubes(strategy):
    clip, _, _ = glide_and_bounce_clip()
    static = clip[:, :1].repeat(4, GRID.frames, 1, 1, 1)  # the first frame, frozen
    mask = make_mask_fn(MaskConfig(strategy=strategy, ratio=0.4))(
        static, GRID, torch.Generator().manual_seed(0))
    per_place = rearrange(mask, "b (t s) -> b s t", t=GRID.shape[0]).sum(-1)  # (B, S)
    partial = ((per_place > 0) & (per_place < GRID.shape[0])).sum(1)
    assert (partial <= 1).all()  # whole tubes, except one to reach the exact count
    assert len({tuple(m.tolist()) for m in mask}) == 4  # random, not a fixed pattern


def test_billiards_hit_rate_beats_random_and_interaction_beats_motion(billiards):
    clips, collisions, moving = billiards
    generator = torch.Generator().manual_seed(0)
    hits = {s: hit_rate(make_mask_fn(MaskConfig(strategy=s, ratio=0.1))(clips, GRID, generator),
                        collisions) for s in ("random_tube", "accel", "interaction")}
    assert hits["random_tube"] < 0.25  # near the ratio
    assert hits["accel"] > hits["random_tube"] + 0.2
    assert hits["interaction"] > hits["random_tube"] + 0.2
    select = {s: selectivity(saliency(s, clips, GRID), collisions, moving)
              for s in ("motion", "interaction")}
    assert select["interaction"] > select["motion"]


def test_config_group_composes_and_bad_values_raise_config_error():
    for name in STRATEGIES:
        with_group = load_config_group(name)
        assert with_group.strategy == name
    with pytest.raises(ConfigError, match="ratio"):
        make_mask_fn(to_dataclass({"strategy": "accel", "ratio": 1.5}, MaskConfig))
    with pytest.raises(ConfigError, match="strategy"):
        to_dataclass({"strategy": "blobs"}, MaskConfig)
    with pytest.raises(ConfigError, match="ratio"):
        MaskConfig(ratio=-0.1).validate()
    assert num_hidden(0.4, GRID) == 205


def load_config_group(name: str) -> MaskConfig:
    """configs/masking/<name>.yaml validated on MaskConfig."""
    return to_dataclass(load_config("masking/" + name).masking, MaskConfig)


def test_sparse_matching_equals_dense_soft_argmin_and_still_pixels_do_not_move():
    clip, _, _ = glide_and_bounce_clip()
    flow, matched = block_flow(clip[:, :3])  # (1, 2, H, W, 2)
    assert (flow.flatten(0, 3).norm(dim=-1) > 0).sum() <= len(matched) < flow[..., 0].numel()
    frames = clip[0, :2].float() / 255.0  # (2, H, W, 3)
    y, x = 10, 11  # the glider's right edge, moving +2 px in x
    pad = F.pad(rearrange(frames, "t h w c -> t c h w"), (3,) * 4, mode="replicate")
    source = pad[0, :, y + 2:y + 5, x + 2:x + 5]
    costs = torch.stack([((pad[1, :, y + 2 + dy:y + 5 + dy, x + 2 + dx:x + 5 + dx] - source) ** 2)
                         .mean((1, 2)).sum() for dy in range(-2, 3) for dx in range(-2, 3)])
    weights = torch.softmax(-costs / 0.03, dim=0)  # (25,) soft arg-min
    expected = weights @ torch.tensor([[dx, dy] for dy in range(-2, 3) for dx in range(-2, 3)],
                                      dtype=torch.float32)
    assert torch.allclose(flow[0, 0, y, x], expected, atol=1e-4)
    assert flow[0, 0, y, x, 0] > 1.5


@pytest.fixture(scope="module")
def episode_frames():
    """A 20-frame Billiards episode at 64 px (5 balls, so there are collisions to score)."""
    env = make_env("ia_world/Billiards-v0", num_balls=(5, 5), size=64)
    return simulate_episode(env, 11, 20).frames


@pytest.mark.parametrize("strategy", ["motion", "accel", "interaction"])
def test_stored_saliency_equals_live_saliency_and_gives_the_same_masks(strategy,
                                                                       episode_frames):
    stored = episode_saliency(episode_frames)
    assert stored[strategy].dtype == np.float32 and stored[strategy].shape == (20, 8, 8)
    mask_fn = make_mask_fn(MaskConfig(strategy=strategy))
    for start in (0, 1, 4):
        clip = torch.from_numpy(episode_frames[start:start + GRID.frames])[None]
        live = saliency(strategy, clip, GRID)
        from_store = clip_saliency(stored[strategy], strategy, start, GRID.frames,
                                   GRID.tubelet_t)[None]
        torch.testing.assert_close(from_store, live, atol=1e-6, rtol=0)
        for seed in range(3):
            live_mask = mask_fn(clip, GRID, torch.Generator().manual_seed(seed))
            stored_mask = mask_fn(clip, GRID, torch.Generator().manual_seed(seed),
                                  saliency=from_store)
            assert torch.equal(live_mask, stored_mask)


@pytest.mark.parametrize("future", [0.5, 3])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_future_masking_hides_only_future_tokens_with_exact_counts(strategy, future):
    cfg = MaskConfig(strategy=strategy, ratio=0.3, future=future)
    clips = torch.cat([random_clip(2), glide_and_bounce_clip()[0],
                       random_clip(1)[:, :1].expand(-1, GRID.frames, -1, -1, -1)])  # + static
    mask = make_mask_fn(cfg)(clips, GRID, torch.Generator().manual_seed(0))
    t, h, w = GRID.shape
    steps = round(future * t) if future < 1 else future
    by_step = mask.view(len(clips), t, h * w)
    assert not by_step[:, :t - steps].any()  # nothing hidden in the context frames
    assert (mask.sum(1) == num_hidden(cfg.ratio, GRID)).all()
    assert by_step[:, t - steps:].any()


def test_future_masking_refuses_a_future_without_room_for_the_targets():
    with pytest.raises(ConfigError, match="future"):
        make_mask_fn(MaskConfig(ratio=0.4, future=3))(random_clip(1), GRID,
                                                      torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match="future"):
        MaskConfig(future=1.5).validate()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_context_steps_keep_exactly_the_first_time_steps_for_every_strategy(strategy):
    """context_steps=k: the first k token time steps are the whole context, everything later is
    hidden, whatever the strategy, the ratio or the clip."""
    clips = torch.cat([random_clip(2), glide_and_bounce_clip()[0]])
    t, h, w = GRID.shape
    for k in (1, t - 1):
        mask = make_mask_fn(MaskConfig(strategy=strategy, ratio=0.3, context_steps=k))(
            clips, GRID, torch.Generator().manual_seed(0))
        by_step = mask.view(len(clips), t, h * w)
        assert not by_step[:, :k].any() and by_step[:, k:].all()


def test_context_steps_refuse_a_grid_without_targets_and_a_second_time_rule():
    with pytest.raises(ConfigError, match="context_steps"):
        make_mask_fn(MaskConfig(context_steps=GRID.shape[0]))(random_clip(1), GRID,
                                                              torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match="set one of them"):
        MaskConfig(context_steps=1, future=0.5).validate()


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("share", [0.1, 0.5])
def test_target_share_lets_every_strategy_choose_its_targets_after_the_context(strategy, share):
    """context_steps=1 with target_share < 1: exactly round(share x later tokens) targets per
    clip, none in the context step, a different choice per clip (the rest are neither)."""
    t, h, w = GRID.shape
    cfg = MaskConfig(strategy=strategy, context_steps=1, target_share=share)
    clips = torch.cat([random_clip(2), glide_and_bounce_clip()[0]])
    mask = make_mask_fn(cfg)(clips, GRID, torch.Generator().manual_seed(0))
    assert (mask.sum(1) == round(share * (t - 1) * h * w)).all()
    assert not mask.view(len(clips), t, h * w)[:, 0].any()
    assert len({tuple(m.tolist()) for m in mask}) == len(clips)


def test_target_share_interaction_targets_hit_collisions_random_tubes_do_not(billiards):
    """On Billiards with one context step and a tenth of the later tokens as targets,
    interaction targets cover far more of the later collision tokens than random tubes."""
    clips, collisions, _ = billiards
    later = (GRID.token_steps() >= 1).numpy()
    hits = {s: hit_rate(make_mask_fn(MaskConfig(strategy=s, context_steps=1, target_share=0.1))(
        clips, GRID, torch.Generator().manual_seed(0)), collisions & later)
        for s in ("random_tube", "interaction")}
    assert hits["random_tube"] < 0.25
    assert hits["interaction"] > hits["random_tube"] + 0.3


def test_target_share_needs_context_steps_and_at_least_one_target():
    with pytest.raises(ConfigError, match="set context_steps too"):
        MaskConfig(target_share=0.5).validate()
    with pytest.raises(ConfigError, match=r"must be in \(0, 1\]"):
        MaskConfig(context_steps=1, target_share=0.0).validate()
    with pytest.raises(ConfigError, match="chooses no token"):
        make_mask_fn(MaskConfig(context_steps=1, target_share=1e-4))(
            random_clip(1), GRID, torch.Generator().manual_seed(0))


def test_the_mask_report_skips_runs_whose_strategy_chose_nothing():
    """evaluate's hit-rate / selectivity describe the strategy a run trained with; with
    context_steps and every later token a target, every strategy hid the same tokens, so there
    is nothing to report; with target_share < 1 the strategy chose the targets."""
    env = make_env("ia_world/Billiards-v0", num_balls=(5, 5))
    episodes = [simulate_episode(env, seed, GRID.frames) for seed in range(2)]
    config = {"masking": as_dict(MaskConfig(strategy="interaction"))}
    assert set(mask_report(config, episodes, GRID)) >= {"hit@0.1", "selectivity"}
    config = {"masking": as_dict(MaskConfig(strategy="interaction", context_steps=1))}
    assert mask_report(config, episodes, GRID) is None
    config = {"masking": as_dict(MaskConfig(strategy="interaction", context_steps=1,
                                            target_share=0.5))}
    assert set(mask_report(config, episodes, GRID)) >= {"hit@0.1", "selectivity"}
