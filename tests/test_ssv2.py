"""SSv2 loader and the attentive probe on a tiny dataset written here (VP9 webm + label JSONs)."""

import json

import numpy as np
import pytest
import torch
from einops import reduce

from ia_world.data.mix import MixedClips
from ia_world.data.sources import mixed_clips
from ia_world.data.ssv2 import NO_LABEL, ssv2_clips
from ia_world.data.video import write_video
from ia_world.errors import ConfigError, DataError
from ia_world.eval.attentive_probe import AttentiveProbe, ProbeConfig, train_attentive_probe

TEMPLATES = ["Putting [something] on a surface", "Pushing [something] from left to right"] + [
    f"Doing thing {i} with [something]" for i in range(172)]
NUM_FRAMES = 12
PALETTE = np.array([[(i * 80) % 256, (i // 4) * 60, (i % 2) * 200 + 20] for i in range(12)],
                   np.uint8)
# video id -> (split, class index, width); class 0 is reddish, class 1 bluish
VIDEOS = {11: ("train", 0, 320), 12: ("train", 1, 427), 13: ("train", 0, 300),
          14: ("train", 1, 320), 21: ("validation", 1, 360), 22: ("validation", 0, 320),
          31: ("test", None, 320)}


def frame_numbers(frames: np.ndarray) -> list[int]:
    """Index of the palette colour nearest to each frame's mean colour."""
    means = np.asarray(frames, np.float64).reshape(len(frames), -1, 3).mean(1)
    return np.linalg.norm(means[:, None] - PALETTE[None].astype(float), axis=-1).argmin(1).tolist()


def video_frames(video_id: int, label: int | None, width: int) -> np.ndarray:
    """240 px high frames: PALETTE[t] for the plain videos, class colours for labelled ones."""
    if video_id == 11:
        colours = PALETTE
    else:
        rng = np.random.default_rng(video_id)
        base = np.array([200, 40, 40] if label == 0 else [40, 40, 200])
        colours = np.clip(base + rng.integers(-30, 30, (NUM_FRAMES, 3)), 0, 255)
    return np.broadcast_to(colours.astype(np.uint8)[:, None, None], (NUM_FRAMES, 240, width, 3))


@pytest.fixture(scope="module")
def ssv2_root(tmp_path_factory):
    """The published layout: 20bn-something-something-v2/<id>.webm + label JSONs."""
    root = tmp_path_factory.mktemp("ssv2")
    labels = {template.replace("[", "").replace("]", ""): str(i)
              for i, template in enumerate(TEMPLATES)}
    (root / "labels").mkdir()
    (root / "labels" / "something-something-v2-labels.json").write_text(json.dumps(labels))
    for split in ("train", "validation", "test"):
        entries = [{"id": str(video_id)} if label is None else
                   {"id": str(video_id), "label": TEMPLATES[label].replace("[something]", "a cup"),
                    "template": TEMPLATES[label], "placeholders": ["a cup"]}
                   for video_id, (s, label, _) in VIDEOS.items() if s == split]
        path = root / "labels" / f"something-something-v2-{split}.json"
        path.write_text(json.dumps(entries))
    for video_id, (_, label, width) in VIDEOS.items():
        write_video(root / "20bn-something-something-v2" / f"{video_id}.webm",
                    video_frames(video_id, label, width), fps=12, codec="libvpx-vp9")
    return root


def test_clips_labels_and_resampling(ssv2_root):
    clips = ssv2_clips(ssv2_root, "train", frames=4, size=32, fps=6, random_start=False,
                       with_labels=True)
    assert clips.indices == [11, 12, 13, 14] and clips.labels == [0, 1, 0, 1]
    clip = clips[0]
    assert clip["frames"].shape == (4, 32, 32, 3) and clip["frames"].dtype == torch.uint8
    assert clip["episode"] == 11 and clip["label"] == 0 and clip["start"] == (NUM_FRAMES - 7) // 2
    assert frame_numbers(clip["frames"]) == [clip["start"] + 2 * i for i in range(4)]
    assert clip["energy_total"].isnan().all() and clip["energy_kinetic"].isnan().all()
    wide = clips[1]["frames"].float()  # 427 x 240: short side to 32, centre crop, one colour
    assert wide.shape == (4, 32, 32, 3) and wide.std(dim=(1, 2)).max() < 3
    assert "label" not in ssv2_clips(ssv2_root, "train", size=32)[0]


def test_test_split_has_ids_only(ssv2_root):
    clips = ssv2_clips(ssv2_root, "test", frames=4, size=16, with_labels=True)
    assert clips.indices == [31] and clips[0]["label"] == NO_LABEL


def test_missing_and_malformed_files(ssv2_root, tmp_path):
    labels_dir = tmp_path / "labels"
    labels_dir.mkdir()
    for name in ("labels", "train"):
        file = f"something-something-v2-{name}.json"
        (labels_dir / file).write_text((ssv2_root / "labels" / file).read_text())
    videos = tmp_path / "videos"
    videos.mkdir()
    for video_id in (11, 12):
        (videos / f"{video_id}.webm").write_bytes(
            (ssv2_root / "20bn-something-something-v2" / f"{video_id}.webm").read_bytes())
    (videos / "13.webm").write_bytes(b"\x1aE\xdf\xa3 truncated")
    with pytest.raises(DataError, match="14.webm \\(listed in train\\) not found"):
        ssv2_clips(tmp_path, "train")
    train_entries = json.loads((labels_dir / "something-something-v2-train.json").read_text())
    (labels_dir / "something-something-v2-validation.json").write_text(
        json.dumps([e for e in train_entries if e["id"] == "13"]))
    with pytest.raises(DataError, match="13.webm: not a readable video"):
        ssv2_clips(tmp_path, "validation", size=16)[0]
    clips = ssv2_clips(tmp_path, "train", size=16, skip_bad=True)
    assert clips.indices == [11, 12] and clips.skipped == 2
    with pytest.raises(DataError, match="something-something-v2-test.json not found"):
        ssv2_clips(tmp_path, "test")
    (labels_dir / "something-something-v2-labels.json").write_text('{"Putting something": ')
    with pytest.raises(DataError, match="something-something-v2-labels.json: malformed JSON"):
        ssv2_clips(tmp_path, "train")
    (labels_dir / "something-something-v2-labels.json").write_text('{"Other": "0"}')
    with pytest.raises(DataError, match="'Putting something on a surface' is not in the labels"):
        ssv2_clips(tmp_path, "train")


def encode_colours(frames: torch.Tensor) -> torch.Tensor:
    """A frozen stand-in encoder: mean colour of 8x8-pixel patches, (B, T*16, 3) tokens."""
    return reduce(frames.float() / 255, "b t (h p) (w q) c -> b (t h w) c", "mean", p=8, q=8)


def test_attentive_probe_learns_labelled_clips(ssv2_root):
    train = ssv2_clips(ssv2_root, "train", frames=4, size=32, with_labels=True)
    test = ssv2_clips(ssv2_root, "validation", frames=4, size=32, with_labels=True)
    cfg = ProbeConfig(epochs=60, batch_size=2, lr=3e-2, num_heads=1)
    first = train_attentive_probe(encode_colours, train, test, len(TEMPLATES), cfg)
    again = train_attentive_probe(encode_colours, train, test, len(TEMPLATES), cfg)
    assert first == again
    assert first["train_accuracy"] == 1.0 and first["test_accuracy"] == 1.0
    assert (first["num_train"], first["num_test"]) == (4, 2)
    probe = AttentiveProbe(embed_dim=8, num_classes=5, num_heads=2)
    assert probe(torch.randn(3, 10, 8)).shape == (3, 5)


def test_mixture_samples_sources_by_weight(ssv2_root):
    sources = {"train": ssv2_clips(ssv2_root, "train", frames=4, size=16),
               "validation": ssv2_clips(ssv2_root, "validation", frames=4, size=16)}
    mix = MixedClips(sources, {"train": 3.0, "validation": 1.0}, length=400, seed=1)
    counts = mix.counts()
    assert sum(counts.values()) == 400 and 240 < counts["train"] < 360
    assert MixedClips(sources, {"train": 3.0, "validation": 1.0}, 400, seed=1).counts() == counts
    assert MixedClips(sources, {"train": 0.0, "validation": 1.0}, 10).counts() == {
        "validation": 10}
    batch = next(iter(torch.utils.data.DataLoader(mix, batch_size=4)))
    assert batch["frames"].shape == (4, 4, 16, 16, 3) and len(batch["source"]) == 4
    for source, episode in zip(batch["source"], batch["episode"].tolist()):
        assert episode in sources[source].indices
    with pytest.raises(ConfigError, match="data.weights"):
        MixedClips(sources, {"train": 1.0, "shards": 1.0})
    with pytest.raises(ConfigError, match="data.paths.clevrer is required"):
        mixed_clips({"ssv2": str(ssv2_root)}, {"ssv2": 1.0, "clevrer": 1.0}, 4, 16)
    only_ssv2 = mixed_clips({"ssv2": str(ssv2_root)}, {"ssv2": 1.0}, 4, 16)
    assert only_ssv2.counts() == {"ssv2": 4} and only_ssv2[0]["source"] == "ssv2"
