"""CLEVRER: videos as clip datasets, annotations as Episodes, questions with CLEVRER's scoring.

Files are found by name pattern anywhere under a root (`video_(\\d{5}).mp4`,
`annotation_(\\d{5}).json`, `questions/{split}.json`), so both the published folder spelling
(`video_train/video_00000-01000/...`) and flat copies work. The split is the scene index range:
train 0-9999, validation 10000-14999, test 15000-19999. CLEVRER has no energy: Episodes get
`energy=None`, clips NaN energies; pixel positions and boxes are NaN unless the annotation has them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ia_world.data.episode import Episode
from ia_world.data.video import VideoClips, drop_bad, probe_video, read_clip
from ia_world.errors import DataError

log = logging.getLogger(__name__)

SPLITS = {"train": range(0, 10_000), "validation": range(10_000, 15_000),
          "test": range(15_000, 20_000)}
VIDEO_PATTERN = re.compile(r"video_(\d{5})\.mp4")
ANNOTATION_PATTERN = re.compile(r"annotation_(\d{5})\.json")
QUESTION_TYPES = ("descriptive", "explanatory", "predictive", "counterfactual")
VECTOR_KEYS = {"location": "position", "velocity": "velocity", "orientation": "orientation",
               "angular_velocity": "angular_velocity"}
OPTIONAL_STATE_DIMS = {"pixel": 2, "bbox": 4}


def check_split(split: str) -> range:
    """The scene index range of a split; DataError for an unknown split name."""
    if split not in SPLITS:
        raise DataError(f"unknown CLEVRER split {split!r}; expected one of {list(SPLITS)}")
    return SPLITS[split]


def find_numbered(root: str | Path, pattern: re.Pattern, indices: range) -> dict[int, Path]:
    """Files under `root` whose name matches `pattern` (one 5-digit group), keyed by that number."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset root is not a directory")
    found: dict[int, Path] = {}
    for path in sorted(root.rglob("*")):
        match = pattern.fullmatch(path.name)
        if match is None or int(match.group(1)) not in indices:
            continue
        index = int(match.group(1))
        if index in found:
            raise DataError(f"{path}: duplicate of {found[index]}")
        found[index] = path
    return found


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; DataError naming it if it is missing or malformed."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: malformed JSON ({error})") from None


def require(record: dict, key: str, where: str) -> Any:
    """record[key], or DataError naming where the key is missing."""
    if not isinstance(record, dict) or key not in record:
        raise DataError(f"{where}: missing key {key!r}")
    return record[key]


def vector(value: Any, dims: int, where: str) -> np.ndarray:
    """A length-`dims` float vector, or DataError naming where it is malformed."""
    try:
        array = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape != (dims,):
        raise DataError(f"{where}: expected {dims} numbers, got {value!r}")
    return array


def annotation_to_episode(annotation: dict, frames: np.ndarray | None = None,
                          source: str = "annotation") -> Episode:
    """Map a CLEVRER annotation dict onto the episode contract (energy None: not in CLEVRER)."""
    try:
        return _annotation_to_episode(annotation, frames, source)
    except (TypeError, ValueError, AttributeError) as error:  # a field of the wrong type
        raise DataError(f"{source}: malformed annotation ({error})") from None


def _annotation_to_episode(annotation: dict, frames: np.ndarray | None, source: str) -> Episode:
    properties = require(annotation, "object_property", source)
    trajectory = require(annotation, "motion_trajectory", source)
    objects = []
    for k, prop in enumerate(properties):
        where = f"{source}: object_property[{k}]"
        fields = {key: require(prop, key, where) for key in ("object_id", "color", "material",
                                                              "shape")}
        objects.append({"id": int(fields["object_id"]),
                        **{key: value for key, value in prop.items() if key != "object_id"}})
    column = {obj["id"]: k for k, obj in enumerate(objects)}
    num_frames, num_objects = len(trajectory), len(objects)
    dims = {**{key: 3 for key in VECTOR_KEYS.values()}, **OPTIONAL_STATE_DIMS}
    states = {key: np.full((num_frames, num_objects, d), np.nan) for key, d in dims.items()}
    in_view = np.zeros((num_frames, num_objects), bool)
    for row, step in enumerate(trajectory):
        frame_id = int(require(step, "frame_id", f"{source}: motion_trajectory[{row}]"))
        if not 0 <= frame_id < num_frames:
            raise DataError(f"{source}: motion_trajectory[{row}] frame_id {frame_id} is outside "
                            f"0..{num_frames - 1}")
        for j, obj in enumerate(require(step, "objects", f"{source}: motion_trajectory[{row}]")):
            where = f"{source}: motion_trajectory[{row}].objects[{j}]"
            k = column.get(int(require(obj, "object_id", where)))
            if k is None:
                raise DataError(f"{where}: object_id {obj['object_id']} is not in object_property")
            for key, state_key in VECTOR_KEYS.items():
                states[state_key][frame_id, k] = vector(require(obj, key, where), 3, where)
            for key, d in OPTIONAL_STATE_DIMS.items():
                if key in obj:
                    states[key][frame_id, k] = vector(obj[key], d, where)
            in_view[frame_id, k] = bool(obj.get("inside_camera_view", True))
    collisions = []
    for c, event in enumerate(require(annotation, "collision", source)):
        where = f"{source}: collision[{c}]"
        ids = [int(i) for i in require(event, "object_ids", where)]
        collisions.append({"frame": int(require(event, "frame_id", where)), "object_ids": ids,
                           "impulse": float(event.get("impulse", np.nan)),
                           "position": vector(require(event, "location", where), 3, where),
                           "pixel": vector(event.get("pixel", [np.nan] * 2), 2, where)})
    meta = {"source": "clevrer", "scene_index": annotation.get("scene_index"),
            "video_filename": annotation.get("video_filename"), "inside_camera_view": in_view}
    if frames is None:
        frames = np.zeros((num_frames, 0, 0, 3), np.uint8)
    return Episode(frames, objects, states, None, collisions, meta)


def clevrer_clips(root: str | Path, split: str = "train", frames: int = 16, size: int = 64,
                  fps: float | None = None, random_start: bool = True, seed: int = 0,
                  skip_bad: bool = False) -> VideoClips:
    """CLEVRER video clips of a split as pretraining clip dicts (see VideoClips; native 25 fps)."""
    videos = find_numbered(root, VIDEO_PATTERN, check_split(split))
    if not videos:
        raise DataError(f"{root}: no CLEVRER videos (video_XXXXX.mp4) for split {split!r}")
    return VideoClips(videos, frames, size, fps, random_start, seed, skip_bad)


class CLEVREREpisodes(Dataset):
    """CLEVRER scenes as Episodes: annotation ground truth, plus the video's frames if asked.

    `size=None` keeps the native 480x320 frames; an int gives square size x size frames.
    """

    def __init__(self, root: str | Path, split: str = "train", load_frames: bool = True,
                 size: int | None = None, skip_bad: bool = False):
        span = check_split(split)
        self.load_frames, self.size = load_frames, size
        annotations = find_numbered(root, ANNOTATION_PATTERN, span)
        videos = find_numbered(root, VIDEO_PATTERN, span) if load_frames else {}
        scenes = {i: (path, videos.get(i)) for i, path in annotations.items()}
        scenes, self.skipped = drop_bad(scenes, self._check, skip_bad, "CLEVRER scenes")
        if not scenes:
            raise DataError(f"{root}: no CLEVRER annotations (annotation_XXXXX.json) for "
                            f"split {split!r}")
        self.indices, self.files = list(scenes), list(scenes.values())

    def _check(self, files: tuple[Path, Path | None]) -> None:
        annotation_path, video_path = files
        annotation_to_episode(read_json(annotation_path), source=str(annotation_path))
        if self.load_frames:
            self._video(annotation_path, video_path)

    @staticmethod
    def _video(annotation_path: Path, video_path: Path | None) -> Path:
        if video_path is None:
            name = annotation_path.name.replace("annotation_", "video_").replace(".json", ".mp4")
            raise DataError(f"{name}: video for {annotation_path} not found")
        probe_video(video_path)
        return video_path

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Episode:
        """Scene i as an Episode (frames (T, H, W, 3) uint8, or (T, 0, 0, 3) without frames)."""
        annotation_path, video_path = self.files[i]
        annotation = read_json(annotation_path)
        episode = annotation_to_episode(annotation, source=str(annotation_path))
        if self.load_frames:
            video_path = self._video(annotation_path, video_path)
            episode.frames = read_clip(video_path, np.arange(episode.num_frames), self.size)
        episode.meta["scene_index"] = self.indices[i]
        return episode


def parse_question(raw: dict, scene: dict, where: str) -> dict[str, Any]:
    """One CLEVRER question as a flat record; answers are None where the file has none (test)."""
    question_type = require(raw, "question_type", where)
    if question_type not in QUESTION_TYPES:
        raise DataError(f"{where}: question_type {question_type!r} is not one of "
                        f"{list(QUESTION_TYPES)}")
    raw_choices = raw.get("choices", [])
    if not isinstance(raw_choices, list):
        raise DataError(f"{where}.choices: expected a list, got {type(raw_choices).__name__}")
    choices = []
    for c, choice in enumerate(raw_choices):
        if not isinstance(choice, dict):
            raise DataError(f"{where}.choices[{c}]: expected an object, got "
                            f"{type(choice).__name__}")
        answer = choice.get("answer")
        if answer not in (None, "correct", "wrong"):
            raise DataError(f"{where}.choices[{c}]: answer {answer!r} is not correct/wrong")
        choices.append({"choice_id": choice.get("choice_id", c),
                        "choice": require(choice, "choice", f"{where}.choices[{c}]"),
                        "program": choice.get("program"),
                        "answer": None if answer is None else answer == "correct"})
    if question_type != "descriptive" and not choices:
        raise DataError(f"{where}: {question_type} question without choices")
    scene_index = require(scene, "scene_index", where)
    if isinstance(scene_index, bool) or not isinstance(scene_index, int | str) or not str(
            scene_index).strip().isdigit():
        raise DataError(f"{where}: scene_index {scene_index!r} is not an integer >= 0")
    return {"scene_index": int(scene_index),
            "video_filename": scene.get("video_filename"),
            "question_id": raw.get("question_id"), "question_type": question_type,
            "question_subtype": raw.get("question_subtype"),
            "question": require(raw, "question", where), "program": raw.get("program"),
            "answer": raw.get("answer"), "choices": choices}


def is_answered(question: dict) -> bool:
    """Whether a question record carries its answer (all its choices' answers)."""
    if question["question_type"] == "descriptive":
        return question["answer"] is not None
    return all(c["answer"] is not None for c in question["choices"])


class CLEVRERQuestions(Dataset):
    """The questions of `questions/{split}.json` as flat records (see `parse_question`)."""

    def __init__(self, root: str | Path, split: str = "validation", skip_bad: bool = False):
        check_split(split)
        matches = [p for p in Path(root).rglob(f"{split}.json") if p.parent.name == "questions"]
        if not matches:
            raise DataError(f"{root}: questions/{split}.json not found")
        self.path = matches[0]
        scenes = read_json(self.path)
        if not isinstance(scenes, list):
            raise DataError(f"{self.path}: expected a list of scenes, got {type(scenes).__name__}")
        self.questions: list[dict[str, Any]] = []
        self.skipped = 0
        for s, scene in enumerate(scenes):
            for q, raw in enumerate(require(scene, "questions", f"{self.path}: [{s}]")):
                try:
                    self.questions.append(parse_question(raw, scene, f"{self.path}: [{s}][{q}]"))
                except DataError:
                    if not skip_bad:
                        raise
                    self.skipped += 1
        if self.skipped:
            log.warning("skipped %d malformed questions in %s", self.skipped, self.path)

    @property
    def has_answers(self) -> bool:
        """False for the test split, whose questions come without answers."""
        return all(is_answered(q) for q in self.questions)

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.questions[i]


def descriptive_answer(predicted: Any, question: dict) -> str:
    """A descriptive prediction: a string ("yes", "3", "red"); else DataError naming it."""
    if not isinstance(predicted, str):
        raise DataError(f"question {question['question_id']}: a descriptive answer must be a "
                        f"string, got {predicted!r}")
    return predicted


def choice_answers(predicted: Any, question: dict) -> list[bool]:
    """A multiple-choice prediction as one bool per choice (True/"correct", False/"wrong")."""
    values = {True: True, False: False, "correct": True, "wrong": False}
    if isinstance(predicted, list | tuple) and all(
            isinstance(p, bool | np.bool_ | str) and p in values for p in predicted):
        return [values[p] for p in predicted]
    raise DataError(f"question {question['question_id']}: a {question['question_type']} answer "
                    f"must be a list of true/false or 'correct'/'wrong', one per choice, got "
                    f"{predicted!r}")


def score_answers(questions: Sequence[dict], predictions: Sequence[Any]) -> dict[str, dict]:
    """Per-option and per-question accuracy by question type, as CLEVRER's executor scores them.

    predictions[i] is the answer string of a descriptive question, or one answer per choice
    (True or "correct", False or "wrong") of a multiple-choice one; anything else is a DataError
    naming the question. A multiple-choice question counts as correct only if every option is; a
    descriptive question is one option.
    """
    if len(questions) != len(predictions):
        raise DataError(f"{len(predictions)} predictions for {len(questions)} questions")
    tally = {t: np.zeros(4, np.int64) for t in QUESTION_TYPES}  # options ok/all, questions ok/all
    for q, predicted in zip(questions, predictions):
        if q["question_type"] == "descriptive":
            truth, guess = [q["answer"]], [descriptive_answer(predicted, q)]
        else:
            truth, guess = [c["answer"] for c in q["choices"]], choice_answers(predicted, q)
        if not is_answered(q):
            raise DataError(f"question {q['question_id']} of scene {q['scene_index']} has no "
                            f"answer (test split): cannot score")
        if len(guess) != len(truth):
            raise DataError(f"question {q['question_id']}: {len(guess)} predictions for "
                            f"{len(truth)} choices")
        right = sum(t == g for t, g in zip(truth, guess))
        tally[q["question_type"]] += (right, len(truth), right == len(truth), 1)
    return {t: {"per_option": ok / max(n, 1), "per_question": qok / max(qn, 1),
                "options": int(n), "questions": int(qn)}
            for t, (ok, n, qok, qn) in tally.items() if qn}
