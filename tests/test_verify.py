"""`ia-world verify`: a clean dataset passes; truncated and foreign shards are named, repaired."""

import shutil
from pathlib import Path

import pytest

from ia_world.data.generator import GenerateConfig, generate
from ia_world.data.shards import shard_path
from ia_world.data.verify import verify
from ia_world_app import cli


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
