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


# ---- hardening II: tampered datasets, actions, exclude_ids, answers (issue 15) ----------------
@pytest.fixture(scope="module")
def pair_of_datasets(tmp_path_factory):
    """Two 3-episode datasets of one shard per episode: 32 px seed 0 and 64 px seed 1."""
    from ia_world.data.generator import GenerateConfig, generate

    root = tmp_path_factory.mktemp("pair")
    for name, seed, size in [("a", 0, 32), ("b", 1, 64)]:
        generate(GenerateConfig(out=str(root / name), episodes=3, frames=4, size=size,
                                shard_size=1, seed=seed))
    return root


def read_checked(root) -> list[int]:
    """Seeds of every episode read through the store, each checked against the manifest."""
    from ia_world.data.shards import EpisodeStore

    store = EpisodeStore(root)
    seeds = [store[k].meta["seed"] for k in range(len(store))]
    assert seeds == [store.seed_of(k) for k in range(len(store))]
    return seeds


def fresh_copy(source, target):
    """A copy of the dataset `source` at `target` (replacing any earlier one)."""
    import shutil

    shutil.rmtree(target, ignore_errors=True)
    return shutil.copytree(source, target)


@FAST
@given(key=st.sampled_from(["episodes", "shard_size", "seed", "frames", "size",
                            "format_version"]),
       value=JSON | st.integers(-3, 10**6))
def test_tampered_manifest_reads_right_or_is_named(pair_of_datasets, tmp_path, key, value):
    import json

    root = fresh_copy(pair_of_datasets / "a", tmp_path / "a")
    manifest = json.loads((root / "dataset.json").read_text())
    original = manifest[key]
    (root / "dataset.json").write_text(json.dumps(dict(manifest, **{key: value})))
    try:
        seeds = read_checked(root)
    except IAWorldError as error:
        assert "dataset.json" in str(error) or "shard-0000" in str(error)
        return
    assert value == original or (key == "episodes" and 1 <= value < 3)
    assert len(seeds) == (value if key == "episodes" else 3)


@FAST
@given(data=st.binary(max_size=80) | st.text(max_size=80).map(str.encode))
def test_random_sidecar_is_named(pair_of_datasets, tmp_path, data):
    root = fresh_copy(pair_of_datasets / "a", tmp_path / "a")
    (root / "shards" / "shard-00001.sha256").write_bytes(data)
    with pytest.raises(IAWorldError, match="shard-00001"):
        read_checked(root)


@FAST
@given(sources=st.lists(st.sampled_from(["a", "b"]), min_size=3, max_size=3))
def test_shard_mix_reads_right_or_names_the_foreign_shard(pair_of_datasets, tmp_path, sources):
    import shutil

    root = fresh_copy(pair_of_datasets / "a", tmp_path / "a")
    for shard, source in enumerate(sources):
        for suffix in ("safetensors", "sha256"):
            name = f"shards/shard-{shard:05d}.{suffix}"
            shutil.copy(pair_of_datasets / source / name, root / name)
    try:
        read_checked(root)
    except IAWorldError as error:
        assert f"shard-{sources.index('b'):05d}.safetensors" in str(error)
        return
    assert "b" not in sources


FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=15, deadline=None)
@given(actions=st.lists(st.tuples(FLOATS, FLOATS), min_size=1, max_size=4))
def test_push_ball_refuses_non_finite_actions_and_stays_finite(actions):
    from ia_world.data.episode import make_env

    env = make_env("ia_world/PushBall-v0", size=16)
    env.reset(seed=0)
    for action in actions:
        try:
            _, reward, *_ = env.step(np.array(action, np.float32))
        except ValueError as error:
            assert not np.isfinite(action).all() and "finite" in str(error)
            continue
        assert np.isfinite(action).all() and np.isfinite(reward)
    assert np.isfinite(env.step(np.zeros(2, np.float32))[1])


@settings(max_examples=20, deadline=None)
@given(ids=st.lists(st.integers(-3, 12) | st.floats(-1, 12) | st.booleans(), max_size=3))
def test_exclude_ids_remove_exactly_those_objects_or_are_refused(ids):
    from ia_world.data.episode import make_env

    env = make_env("ia_world/Billiards-v0", size=16)
    _, info = env.reset(seed=0)
    all_ids = {obj["id"] for obj in info["objects"]}
    try:
        _, info = env.reset(seed=0, options={"exclude_ids": ids})
    except ValueError as error:
        assert "exclude_ids" in str(error)
        assert not all(type(i) is int and i in all_ids for i in ids)
        return
    assert {obj["id"] for obj in info["objects"]} == all_ids - set(ids)


ANSWERS = st.none() | st.booleans() | st.integers(0, 2) | st.sampled_from(
    ["correct", "wrong", "yes", "no", "red"]) | st.lists(
    st.none() | st.booleans() | st.sampled_from(["correct", "wrong", "no"]), max_size=3)


@FAST
@given(predictions=st.tuples(ANSWERS, ANSWERS))
def test_answers_are_scored_as_clevrer_defines_them_or_named(predictions):
    from ia_world.data.clevrer import score_answers

    choices = [{"answer": True}, {"answer": False}]
    questions = [{"question_id": 7, "scene_index": 0, "question_type": "descriptive",
                  "answer": "red", "choices": []},
                 {"question_id": 8, "scene_index": 0, "question_type": "predictive",
                  "answer": None, "choices": choices}]
    descriptive, choice = predictions
    as_bool = {True: True, False: False, "correct": True, "wrong": False}
    valid_choice = (isinstance(choice, list) and len(choice) == 2
                    and all(type(c) in (bool, str) and c in as_bool for c in choice))
    try:
        scores = score_answers(questions, [descriptive, choice])
    except IAWorldError as error:
        bad = "question 7" if not isinstance(descriptive, str) else "question 8"
        assert bad in str(error) and not (isinstance(descriptive, str) and valid_choice)
        return
    assert isinstance(descriptive, str) and valid_choice
    assert scores["descriptive"]["per_option"] == float(descriptive == "red")
    right = sum(as_bool[c] == t["answer"] for c, t in zip(choice, choices))
    assert scores["predictive"]["per_option"] == right / 2
