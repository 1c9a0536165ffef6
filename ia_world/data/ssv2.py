"""Something-Something V2: `<id>.webm` clips with their template class labels (174 classes).

Files are found by name anywhere under a root: `something-something-v2-labels.json` (template
without brackets -> class index as a string), `something-something-v2-{split}.json` (a list of
`{id, label, template, placeholders}`; the test split has ids only) and the `<id>.webm` videos.
A template's class is looked up with its brackets stripped ("Putting [something] on a surface"
-> "Putting something on a surface"), as the labels file spells it.
"""

from __future__ import annotations

import re
from pathlib import Path

from ia_world.data.clevrer import read_json, require
from ia_world.data.video import VideoClips
from ia_world.errors import DataError

SPLITS = ("train", "validation", "test")
VIDEO_PATTERN = re.compile(r"(\d+)\.webm")
NO_LABEL = -1


def find_file(root: str | Path, name: str) -> Path:
    """The one file called `name` under `root`; DataError naming it if absent."""
    matches = sorted(Path(root).rglob(name))
    if not matches:
        raise DataError(f"{root}: {name} not found")
    return matches[0]


def template_class(template: str) -> str:
    """A template as the labels file keys it: brackets around placeholders removed."""
    return template.replace("[", "").replace("]", "")


def read_labels(root: str | Path) -> dict[str, int]:
    """Class index of each template, from something-something-v2-labels.json."""
    path = find_file(root, "something-something-v2-labels.json")
    labels = read_json(path)
    if not isinstance(labels, dict):
        raise DataError(f"{path}: expected an object template -> class index")
    try:
        return {template: int(index) for template, index in labels.items()}
    except (TypeError, ValueError):
        raise DataError(f"{path}: class indices must be integers written as strings") from None


def read_split(root: str | Path, split: str, classes: dict[str, int]) -> dict[int, int]:
    """Video id -> class index of a split (NO_LABEL for the test split, which has ids only)."""
    if split not in SPLITS:
        raise DataError(f"unknown SSv2 split {split!r}; expected one of {list(SPLITS)}")
    path = find_file(root, f"something-something-v2-{split}.json")
    entries = read_json(path)
    if not isinstance(entries, list):
        raise DataError(f"{path}: expected a list of videos")
    labels = {}
    for e, entry in enumerate(entries):
        where = f"{path}: [{e}]"
        video_id = int(require(entry, "id", where))
        if "template" not in entry:
            labels[video_id] = NO_LABEL
            continue
        template = template_class(entry["template"])
        if template not in classes:
            raise DataError(f"{where}: template {template!r} is not in the labels file")
        labels[video_id] = classes[template]
    return labels


def find_videos(root: str | Path) -> dict[int, Path]:
    """Every `<id>.webm` under root, keyed by id."""
    return {int(m.group(1)): p for p in Path(root).rglob("*.webm")
            if (m := VIDEO_PATTERN.fullmatch(p.name))}


def ssv2_clips(root: str | Path, split: str = "train", frames: int = 16, size: int = 64,
               fps: float | None = None, random_start: bool = True, seed: int = 0,
               skip_bad: bool = False, with_labels: bool = False) -> VideoClips:
    """SSv2 clips of a split as pretraining clip dicts, plus "label" with `with_labels`.

    A video listed in the split but absent raises DataError naming it, or with `skip_bad` is
    skipped (counted in `skipped`, together with unreadable files).
    """
    labels = read_split(root, split, read_labels(root))
    found = find_videos(root)
    missing = [video_id for video_id in labels if video_id not in found]
    if missing and not skip_bad:
        raise DataError(f"{root}: {missing[0]}.webm (listed in {split}) not found"
                        + (f", nor {len(missing) - 1} more" if len(missing) > 1 else ""))
    videos = {video_id: found[video_id] for video_id in labels if video_id in found}
    if not videos:
        raise DataError(f"{root}: no SSv2 videos (<id>.webm) for split {split!r}")
    clips = VideoClips(videos, frames, size, fps, random_start, seed, skip_bad,
                       labels if with_labels else None)
    clips.skipped += len(missing)
    return clips
