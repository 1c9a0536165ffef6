"""`ia-world verify`: a clean dataset passes; truncated and foreign shards are named, repaired."""

import shutil
from pathlib import Path

import pytest

from ia_world import cli
from ia_world.data.generator import GenerateConfig, generate
from ia_world.data.shards import shard_path
from ia_world.data.verify import verify


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A clean dataset of 3 episodes in 3 shards, and one of another seed."""
    root = tmp_path_factory.mktemp("verify")
    for name, seed in [("clean", 0), ("other", 7)]:
        generate(GenerateConfig(out=str(root / name), episodes=3, frames=5, size=32,
                                shard_size=1, seed=seed))
    return root / "clean"


@pytest.fixture
def copy(clean, tmp_path) -> Path:
    """A fresh copy of the clean dataset to damage."""
    return Path(shutil.copytree(clean, tmp_path / "copy"))


def files(root: Path) -> dict[str, bytes]:
    """Every shard and annotation file's bytes, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.parent.name in ("shards", "annotations")}


def test_clean_dataset_passes(clean, capsys):
    assert cli.main(["verify", str(clean)]) == 0
    assert "3 episodes in 3 shards, 0 bad" in capsys.readouterr().out
    assert cli.main(["verify", f"path={clean}"]) == 0


def damage_truncate(copy: Path, other: Path) -> None:
    path = shard_path(copy, 1)
    path.write_bytes(path.read_bytes()[:100])


def damage_foreign(copy: Path, other: Path) -> None:
    for suffix in (".safetensors", ".sha256"):
        shutil.copy(shard_path(other, 1).with_suffix(suffix),
                    shard_path(copy, 1).with_suffix(suffix))


def damage_annotation(copy: Path, other: Path) -> None:
    (copy / "annotations" / "annotation_00001.json").write_text("{}")


@pytest.mark.parametrize("damage, problem", [(damage_truncate, "checksum mismatch"),
                                             (damage_foreign, "episode 1 has seed"),
                                             (damage_annotation, "annotation_00001.json")])
def test_bad_shard_is_named_and_repaired_to_the_clean_bytes(clean, copy, capsys, damage,
                                                            problem):
    damage(copy, clean.parent / "other")
    assert cli.main(["verify", str(copy)]) == 2
    captured = capsys.readouterr()
    assert "1 bad" in captured.out and problem in captured.out
    assert "shard-00001.safetensors" in captured.err.strip().splitlines()[-1]
    assert files(copy) != files(clean)
    summary = verify(copy, repair=True)
    assert summary["repaired"] == ["shard-00001.safetensors"] and summary["bad"] == {}
    assert files(copy) == files(clean)
    assert cli.main(["verify", str(copy), "--repair"]) == 0


def damage_compressed_frames(copy: Path, other: Path) -> None:
    """Flip one byte inside episode 1's zstd-compressed frames, with a matching sidecar."""
    import hashlib

    from safetensors import safe_open
    from safetensors.numpy import save

    from ia_world.data.shards import HEADER_KEY, checksum_path

    path = shard_path(copy, 1)
    with safe_open(str(path), framework="np") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    tensors["1/frames"][len(tensors["1/frames"]) // 2] ^= 0xFF
    data = save(tensors, metadata={HEADER_KEY: metadata[HEADER_KEY]})
    path.write_bytes(data)
    checksum_path(path).write_text(f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")


def test_corrupt_compressed_frames_are_named_and_repaired(clean, copy, capsys):
    damage_compressed_frames(copy, clean.parent / "other")
    assert cli.main(["verify", str(copy)]) == 2
    assert "shard-00001.safetensors: 1/frames does not decompress" in capsys.readouterr().out
    assert verify(copy, repair=True)["bad"] == {}
    assert files(copy) == files(clean)


def test_format_1_dataset_reads_verifies_and_repairs_in_format_1(clean, copy, capsys):
    from ia_world.data.shards import EpisodeStore, rewrite_dataset

    rewrite_dataset(copy, 1)
    old = files(copy)
    raw, compressed = (sum(shard_path(root, s).stat().st_size for s in range(3))
                       for root in (copy, clean))
    assert raw > 3 * compressed  # 32 px, 5 frames, mostly JSON header: still > 3x smaller
    for k in range(3):
        a, b = EpisodeStore(copy)[k], EpisodeStore(clean)[k]
        assert (a.frames == b.frames).all() and a.saliency.keys() == b.saliency.keys()
        assert all((a.states[key] == b.states[key]).all() for key in a.states)
    assert cli.main(["verify", str(copy)]) == 0
    damage_truncate(copy, clean.parent / "other")
    assert verify(copy, repair=True)["repaired"] == ["shard-00001.safetensors"]
    assert files(copy) == old  # repaired in format 1, byte for byte


def test_rewrite_dataset_compresses_a_format_1_dataset_back_to_the_same_bytes(clean, copy):
    from ia_world.data.shards import rewrite_dataset

    rewrite_dataset(copy, 1)
    rewrite_dataset(copy, 2)
    assert files(copy) == files(clean)
    assert verify(copy)["bad"] == {}
