"""Property-based: loaders and mask strategies on random bytes/shapes work or raise IAWorldError."""

import contextlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ia_world.data.clevrer import annotation_to_episode, read_json
from ia_world.data.shards import read_shard
from ia_world.data.video import probe_video
from ia_world.errors import IAWorldError
from ia_world.masking import STRATEGIES, MaskConfig, make_mask_fn
from ia_world.tokens import TokenGrid

FAST = settings(max_examples=12, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False)
                    | st.text(max_size=4),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["object_property", "motion_trajectory",
                                                       "collision", "object_id", "frame_id",
                                                       "objects", "location", "velocity",
                                                       "color", "material", "shape"]),
                                      inner, max_size=4),
                    max_leaves=12)


@FAST
@given(data=st.binary(max_size=2048))
def test_shard_reader_on_random_bytes(tmp_path, data):
    path = tmp_path / "shard-00000.safetensors"
    path.write_bytes(data)
    with contextlib.suppress(IAWorldError):
        read_shard(path)


@FAST
@given(data=st.binary(max_size=1024))
def test_video_reader_on_random_bytes(tmp_path, data):
    path = tmp_path / "video.mp4"
    path.write_bytes(data)
    with pytest.raises(IAWorldError):
        probe_video(path)


@FAST
@given(annotation=JSON)
def test_annotation_parser_on_random_json(annotation):
    try:
        annotation_to_episode(annotation, source="random.json")
    except IAWorldError as error:
        assert "random.json" in str(error)


@FAST
@given(data=st.binary(max_size=256))
def test_json_reader_on_random_bytes(tmp_path, data):
    path = tmp_path / "annotation.json"
    path.write_bytes(data)
    try:
        read_json(path)
    except IAWorldError as error:
        assert "annotation.json" in str(error)


@settings(max_examples=10, deadline=None)
@given(strategy=st.sampled_from(STRATEGIES), batch=st.integers(1, 3),
       frames=st.sampled_from([2, 4, 8]), size=st.sampled_from([16, 32]),
       ratio=st.floats(0.0, 1.0, exclude_min=True, exclude_max=True),
       seed=st.integers(0, 2**31 - 1))
def test_mask_strategies_on_random_shapes(strategy, batch, frames, size, ratio, seed):
    grid = TokenGrid(frames=frames, size=size, tubelet_t=2, patch=8)
    clip = torch.from_numpy(np.random.default_rng(seed).integers(
        0, 256, (batch, frames, size, size, 3), dtype=np.uint8))
    mask_fn = make_mask_fn(MaskConfig(strategy=strategy, ratio=ratio))
    try:
        mask = mask_fn(clip, grid, torch.Generator().manual_seed(seed))
    except IAWorldError as error:  # only a clip too short for a saliency may be refused
        assert frames < 3 and strategy in error.args[0]
        return
    assert mask.shape == (batch, grid.num_tokens) and mask.dtype == torch.bool
    assert (mask.sum(1) == round(ratio * grid.num_tokens)).all()
