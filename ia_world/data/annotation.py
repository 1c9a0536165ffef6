"""An episode's ground truth in CLEVRER's annotation schema, so one QA pipeline serves both."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ia_world.atomic import atomic_write_json
from ia_world.data.episode import Episode


def annotation_path(root: str | Path, k: int) -> Path:
    """Where the annotation of episode k lives under a dataset root."""
    return Path(root) / "annotations" / f"annotation_{k:05d}.json"


def video_filename(k: int) -> str:
    """CLEVRER-style video name of episode k (its preview, when one is written)."""
    return f"video_{k:05d}.mp4"


def inside_view(bbox: np.ndarray, size: int) -> np.ndarray:
    """Whether each pixel bounding box (..., 4: left, top, right, bottom) overlaps the frame."""
    left, top, right, bottom = np.moveaxis(bbox, -1, 0)
    return (right > 0) & (left < size) & (bottom > 0) & (top < size)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many acyclic containers: the thousands
    of small dicts of an annotation otherwise trigger collections that scan the whole heap
    (several ms per episode in a process that has imported torch)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def episode_annotation(episode: Episode, scene_index: int) -> dict[str, Any]:
    """The CLEVRER annotation dict: object_property, motion_trajectory, collision."""
    with gc_paused():
        return _episode_annotation(episode, scene_index)


def _episode_annotation(episode: Episode, scene_index: int) -> dict[str, Any]:
    size = episode.frames.shape[1]
    ids = [obj["id"] for obj in episode.objects]
    # (T, K, 3) arrays as nested lists once: per-element tolist() dominates otherwise
    location, orientation, velocity, angular_velocity = (
        episode.states[key].tolist()
        for key in ("position", "orientation", "velocity", "angular_velocity"))
    visible = inside_view(episode.states["bbox"], size).tolist()  # (T, K)
    trajectory = [{"frame_id": t, "objects": [
        {"object_id": object_id, "location": loc, "orientation": ori, "velocity": vel,
         "angular_velocity": ang, "inside_camera_view": vis}
        for object_id, loc, ori, vel, ang, vis in zip(ids, *frame)]}
        for t, frame in enumerate(zip(location, orientation, velocity, angular_velocity, visible))]
    return {
        "scene_index": int(scene_index),
        "video_filename": video_filename(scene_index),
        "object_property": [{"object_id": obj["id"], "color": obj["color"],
                             "material": obj["material"], "shape": obj["shape"]}
                            for obj in episode.objects],
        "motion_trajectory": trajectory,
        "collision": [{"object_ids": list(c["object_ids"]), "frame_id": int(c["frame"]),
                       "location": list(c["position"])} for c in episode.collisions],
    }


def write_annotation(root: str | Path, episode: Episode, k: int) -> Path:
    """Write episode k's annotation JSON atomically; returns its path."""
    path = annotation_path(root, k)
    atomic_write_json(path, episode_annotation(episode, k), indent=None)
    return path
