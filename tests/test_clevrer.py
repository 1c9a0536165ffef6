"""CLEVRER loader on tiny datasets written here in the published formats (mp4 + JSON)."""

import json

import numpy as np
import pytest
import torch

from ia_world.data.annotation import video_filename, write_annotation
from ia_world.data.clevrer import (
    CLEVREREpisodes,
    CLEVRERQuestions,
    clevrer_clips,
    score_answers,
)
from ia_world.data.episode import make_env, simulate_episode
from ia_world.data.video import write_video
from ia_world.errors import DataError

NUM_FRAMES = 24
# one well-separated solid colour per frame, so a decoded frame tells its own index
PALETTE = np.array([[(i * 80) % 256, (i // 4) * 50, (i % 2) * 200 + 20] for i in range(24)],
                   np.uint8)


def frame_numbers(frames: np.ndarray) -> list[int]:
    """Index of the palette colour nearest to each frame's mean colour."""
    means = np.asarray(frames, np.float64).reshape(len(frames), -1, 3).mean(1)
    return np.linalg.norm(means[:, None] - PALETTE[None].astype(float), axis=-1).argmin(1).tolist()


def annotation(index: int) -> dict:
    """A CLEVRER annotation of 2 objects over NUM_FRAMES frames with one collision."""
    objects = [{"object_id": 0, "color": "red", "material": "metal", "shape": "cube"},
               {"object_id": 1, "color": "blue", "material": "rubber", "shape": "sphere"}]
    trajectory = [{"frame_id": t, "objects": [
        {"object_id": k, "location": [t + 0.5 * k, -k, 0.2], "orientation": [0, 0, 0.1 * t],
         "velocity": [1.0, 0.0, k], "angular_velocity": [0, 0, 0.5 * k],
         "inside_camera_view": not (k == 1 and t < 3)} for k in (1, 0)]}
        for t in range(NUM_FRAMES)]
    return {"scene_index": index, "video_filename": f"video_{index:05d}.mp4",
            "object_property": objects, "motion_trajectory": trajectory,
            "collision": [{"object_ids": [0, 1], "frame_id": 7, "location": [1.0, 2.0, 0.2]}]}


def write_scene(root, index: int, nested: bool = True) -> None:
    """video_XXXXX.mp4 (480x320, 25 fps, frame t coloured PALETTE[t]) + annotation_XXXXX.json."""
    split = "train" if index < 10_000 else "validation" if index < 15_000 else "test"
    block = f"{index // 1000 * 1000:05d}-{index // 1000 * 1000 + 1000:05d}"
    video_dir = root / f"video_{split}" / f"video_{block}" if nested else root
    note_dir = root / f"annotation_{split}" / f"annotation_{block}" if nested else root
    frames = np.broadcast_to(PALETTE[:NUM_FRAMES, None, None], (NUM_FRAMES, 320, 480, 3))
    write_video(video_dir / f"video_{index:05d}.mp4", frames, fps=25)
    note_dir.mkdir(parents=True, exist_ok=True)
    (note_dir / f"annotation_{index:05d}.json").write_text(json.dumps(annotation(index)))


QUESTIONS = [{"scene_index": 10001, "video_filename": "video_10001.mp4", "questions": [
    {"question_id": 0, "question": "What color is the cube?", "question_type": "descriptive",
     "question_subtype": "query_color", "program": ["objects", "filter_cube", "query_color"],
     "answer": "red"},
    {"question_id": 1, "question": "Which is responsible for the collision?",
     "question_type": "explanatory", "program": ["events", "filter_collision"],
     "choices": [{"choice_id": 0, "choice": "The cube", "program": ["a"], "answer": "correct"},
                 {"choice_id": 1, "choice": "The sphere", "program": ["b"], "answer": "wrong"},
                 {"choice_id": 2, "choice": "The cylinder", "program": ["c"],
                  "answer": "wrong"}]},
    {"question_id": 2, "question": "What will happen next?", "question_type": "predictive",
     "program": ["events"],
     "choices": [{"choice_id": 0, "choice": "A collides", "program": ["d"], "answer": "wrong"},
                 {"choice_id": 1, "choice": "B collides", "program": ["e"],
                  "answer": "correct"}]}]}]


def strip_answers(scenes: list) -> list:
    """The test split's layout: the same questions without any answer."""
    scenes = json.loads(json.dumps(scenes))
    for question in scenes[0]["questions"]:
        question.pop("answer", None)
        for choice in question.get("choices", []):
            choice.pop("answer")
    return scenes


@pytest.fixture(scope="module")
def clevrer_root(tmp_path_factory):
    """Published spelling: video_train/video_00000-01000/..., plus questions/*.json."""
    root = tmp_path_factory.mktemp("clevrer")
    for index in (1, 2, 10001):
        write_scene(root, index)
    (root / "questions").mkdir()
    (root / "questions" / "validation.json").write_text(json.dumps(QUESTIONS))
    (root / "questions" / "test.json").write_text(json.dumps(strip_answers(QUESTIONS)))
    return root


def test_annotation_fields_read_as_written(clevrer_root):
    episode = CLEVREREpisodes(clevrer_root, "train", load_frames=False)[0]
    written = annotation(1)
    assert episode.meta["scene_index"] == 1 and episode.energy is None
    assert [o["id"] for o in episode.objects] == [0, 1]
    assert [(o["color"], o["material"], o["shape"]) for o in episode.objects] == [
        ("red", "metal", "cube"), ("blue", "rubber", "sphere")]
    assert episode.states["position"].shape == (NUM_FRAMES, 2, 3)
    for t in (0, 5, NUM_FRAMES - 1):
        for obj in written["motion_trajectory"][t]["objects"]:  # written in order 1, 0
            k = obj["object_id"]
            np.testing.assert_array_equal(episode.states["position"][t, k], obj["location"])
            np.testing.assert_array_equal(episode.states["orientation"][t, k], obj["orientation"])
            np.testing.assert_array_equal(episode.states["velocity"][t, k], obj["velocity"])
            np.testing.assert_array_equal(episode.states["angular_velocity"][t, k],
                                          obj["angular_velocity"])
            assert episode.meta["inside_camera_view"][t, k] == obj["inside_camera_view"]
    assert np.isnan(episode.states["pixel"]).all() and np.isnan(episode.states["bbox"]).all()
    [collision] = episode.collisions
    assert collision["frame"] == 7 and collision["object_ids"] == [0, 1]
    np.testing.assert_array_equal(collision["position"], [1.0, 2.0, 0.2])
    assert np.isnan(collision["impulse"])


def test_episode_frames_decoded_in_order(clevrer_root):
    episode = CLEVREREpisodes(clevrer_root, "validation", size=32)[0]
    assert episode.frames.shape == (NUM_FRAMES, 32, 32, 3) and episode.frames.dtype == np.uint8
    assert frame_numbers(episode.frames) == list(range(NUM_FRAMES))


def test_clip_resampling_keeps_the_right_frames(clevrer_root):
    centred = clevrer_clips(clevrer_root, "train", frames=6, size=16, fps=12.5,
                           random_start=False)
    clip = centred[0]
    assert clip["frames"].shape == (6, 16, 16, 3) and clip["frames"].dtype == torch.uint8
    assert clip["episode"] == 1 and clip["start"] == (NUM_FRAMES - 11) // 2
    assert frame_numbers(clip["frames"]) == [clip["start"] + 2 * i for i in range(6)]
    assert clip["energy_total"].isnan().all() and clip["energy_kinetic"].isnan().all()
    native = clevrer_clips(clevrer_root, "train", frames=30, size=16, random_start=False)[1]
    assert frame_numbers(native["frames"]) == list(range(NUM_FRAMES)) + [NUM_FRAMES - 1] * 6
    first = clevrer_clips(clevrer_root, "train", frames=4, size=16, seed=3)
    again = clevrer_clips(clevrer_root, "train", frames=4, size=16, seed=3)
    starts = {clevrer_clips(clevrer_root, "train", frames=4, size=16, seed=s)[0]["start"]
              for s in range(6)}
    assert first[0]["start"] == again[0]["start"] and len(starts) > 1
    assert frame_numbers(first[0]["frames"]) == [first[0]["start"] + i for i in range(4)]


def test_split_discovery_in_both_folder_spellings(clevrer_root, tmp_path):
    for index in (3, 9999, 10000, 15000):
        write_scene(tmp_path, index, nested=False)
    flat = {split: CLEVREREpisodes(tmp_path, split, load_frames=False).indices
            for split in ("train", "validation", "test")}
    assert flat == {"train": [3, 9999], "validation": [10000], "test": [15000]}
    assert clevrer_clips(clevrer_root, "train").indices == [1, 2]
    assert clevrer_clips(clevrer_root, "validation").indices == [10001]
    with pytest.raises(DataError, match="no CLEVRER videos"):
        clevrer_clips(clevrer_root, "test")


def test_questions_and_scoring(clevrer_root):
    questions = CLEVRERQuestions(clevrer_root, "validation")
    assert questions.has_answers and len(questions) == 3
    descriptive, explanatory, predictive = questions
    assert descriptive["answer"] == "red" and descriptive["question_subtype"] == "query_color"
    assert descriptive["program"] == ["objects", "filter_cube", "query_color"]
    assert [c["answer"] for c in explanatory["choices"]] == [True, False, False]
    assert [c["choice"] for c in predictive["choices"]] == ["A collides", "B collides"]
    assert explanatory["scene_index"] == 10001 and predictive["question_id"] == 2
    scores = score_answers(questions, ["red", [True, True, False], [False, True]])
    assert scores["descriptive"] == {"per_option": 1.0, "per_question": 1.0, "options": 1,
                                     "questions": 1}
    assert scores["explanatory"]["per_option"] == pytest.approx(2 / 3)
    assert scores["explanatory"]["per_question"] == 0.0  # one wrong option fails the question
    assert scores["predictive"]["per_question"] == 1.0 and "counterfactual" not in scores


def test_test_split_without_answers(clevrer_root):
    questions = CLEVRERQuestions(clevrer_root, "test")
    assert len(questions) == 3 and not questions.has_answers
    assert questions[0]["answer"] is None
    assert all(c["answer"] is None for c in questions[1]["choices"])
    with pytest.raises(DataError, match="no answer"):
        score_answers(questions, ["red", [True, False, False], [False, True]])


def test_missing_and_malformed_files(tmp_path):
    for index in (1, 2, 3):
        write_scene(tmp_path, index, nested=False)
    (tmp_path / "annotation_00002.json").write_text('{"scene_index": 2, "object_prop')
    (tmp_path / "video_00003.mp4").unlink()
    (tmp_path / "video_00004.mp4").write_bytes(b"not a video")
    with pytest.raises(DataError, match="annotation_00002.json: malformed JSON"):
        CLEVREREpisodes(tmp_path, "train", load_frames=False)[1]
    with pytest.raises(DataError, match="video_00003.mp4: video for .*annotation_00003.json"):
        CLEVREREpisodes(tmp_path, "train")[2]
    scenes = CLEVREREpisodes(tmp_path, "train", skip_bad=True)
    assert scenes.indices == [1] and scenes.skipped == 2
    with pytest.raises(DataError, match="video_00004.mp4: not a readable video"):
        clevrer_clips(tmp_path, "train", size=16)[2]
    clips = clevrer_clips(tmp_path, "train", size=16, skip_bad=True)
    assert clips.indices == [1, 2] and clips.skipped == 1
    (tmp_path / "questions").mkdir()
    broken = json.loads(json.dumps(QUESTIONS))
    del broken[0]["questions"][1]["question_type"]
    (tmp_path / "questions" / "validation.json").write_text(json.dumps(broken))
    with pytest.raises(DataError, match=r"validation.json: \[0\]\[1\]: missing key"):
        CLEVRERQuestions(tmp_path, "validation")
    assert CLEVRERQuestions(tmp_path, "validation", skip_bad=True).skipped == 1
    with pytest.raises(DataError, match="questions/train.json not found"):
        CLEVRERQuestions(tmp_path, "train")


def test_generated_tabletop3d_reads_back_through_clevrer(tmp_path):
    env = make_env("ia_world/Tabletop3D-v0", size=64)
    generated = [simulate_episode(env, seed, 20) for seed in (0, 3)]
    env.close()
    for k, episode in enumerate(generated):
        write_annotation(tmp_path, episode, k)
        write_video(tmp_path / "videos" / video_filename(k), episode.frames,
                    fps=episode.meta["fps"])
    scenes = CLEVREREpisodes(tmp_path, "train", size=64)
    assert scenes.indices == [0, 1]
    for written, read in zip(generated, scenes):
        assert written.collisions and len(read.collisions) == len(written.collisions)
        assert [{k: o[k] for k in ("id", "color", "material", "shape")}
                for o in written.objects] == read.objects
        for before, after in zip(written.collisions, read.collisions):
            assert (after["frame"], after["object_ids"]) == (before["frame"],
                                                               before["object_ids"])
            np.testing.assert_allclose(after["position"], before["position"])
        for key in ("position", "velocity", "orientation", "angular_velocity"):
            np.testing.assert_allclose(read.states[key], written.states[key])
        assert read.frames.shape == written.frames.shape
        assert np.abs(read.frames.astype(int) - written.frames).mean() < 4


def test_pretraining_on_a_mix_of_shards_and_clevrer(clevrer_root, tmp_path, capsys):
    from ia_world import training
    from ia_world.config import load_config, to_dataclass
    from ia_world_app.cli import run_command

    data = tmp_path / "shards"
    run_command("generate", [f"out={data}", "episodes=2", "frames=8", "size=32"])
    overrides = ["model.frames=4", "model.size=32", "model.embed_dim=48", "model.depth=1",
                 "model.num_heads=3", "model.pred_dim=24", "model.pred_depth=1",
                 "model.pred_heads=3", "masking=random_tube", "data=mix", "data.num_workers=0",
                 f"data.paths.shards={data}", f"data.paths.clevrer={clevrer_root}",
                 "data.weights.clevrer=1.0", "batch_size=2", "steps=2", "device=cpu",
                 f"out={tmp_path / 'run'}"]
    schema = training.PretrainConfig
    cfg = to_dataclass(load_config("pretrain", overrides, schema), schema)
    assert training.train(cfg)["step"] == 2
    counts = capsys.readouterr().out.split("clips per source")[1].splitlines()[0]
    assert "'shards'" in counts and "'clevrer'" in counts


def without_programs(scenes: list) -> list:
    """The same questions with no `program` on any question or choice."""
    scenes = json.loads(json.dumps(scenes))
    for question in scenes[0]["questions"]:
        question.pop("program")
        for choice in question.get("choices", []):
            choice.pop("program")
    return scenes


def test_questions_without_programs_load_and_score(tmp_path):
    (tmp_path / "questions").mkdir()
    (tmp_path / "questions" / "validation.json").write_text(json.dumps(
        without_programs(QUESTIONS)))
    questions = CLEVRERQuestions(tmp_path, "validation")
    assert len(questions) == 3 and questions.skipped == 0
    assert questions[1]["program"] is None and questions[1]["choices"][0]["program"] is None
    scores = score_answers(questions, ["red", ["correct", "wrong", "wrong"], [False, True]])
    assert scores["explanatory"]["per_question"] == scores["predictive"]["per_question"] == 1.0


@pytest.mark.parametrize("prediction", ["no", [None, None], True, ["correct", "no"], [1, 0],
                                        [True]])
def test_malformed_choice_answers_name_the_question(clevrer_root, prediction):
    questions = CLEVRERQuestions(clevrer_root, "validation")
    with pytest.raises(DataError, match="question 2"):
        score_answers(questions, ["red", [True, False, False], prediction])


def test_correct_wrong_strings_score_as_clevrer_defines_them(clevrer_root):
    questions = CLEVRERQuestions(clevrer_root, "validation")
    # predictive truth is [wrong, correct]: "wrong" must count as False, not as a true string
    scores = score_answers(questions, ["red", [True, False, False], ["wrong", "correct"]])
    assert scores["predictive"]["per_option"] == 1.0
    scores = score_answers(questions, ["red", [True, False, False], ["correct", "wrong"]])
    assert scores["predictive"]["per_option"] == 0.0
    with pytest.raises(DataError, match="question 0"):
        score_answers(questions, [3, [True, False, False], [False, True]])
