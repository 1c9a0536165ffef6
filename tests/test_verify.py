"""`ia-world verify`: a clean dataset passes; truncated and foreign shards are named, repaired."""

import hashlib
import io
import json
import shutil
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import save

from ia_world.data.generator import GenerateConfig, generate
from ia_world.data.shards import (
    HEADER_KEY,
    EpisodeStore,
    checksum_path,
    compress_arrays,
    rewrite_dataset,
    shard_metadata,
    shard_path,
)
from ia_world.data.verify import VerifyConfig, verify, verify_stage
from ia_world.errors import DataError
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
                                             (damage_foreign, "other seed than dataset.json"),
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


def save_consistent(path: Path, tensors: dict[str, np.ndarray], metadata: dict) -> None:
    """Write a shard's tensors and header with a matching sha256 sidecar (a consistent, bad
    shard)."""
    data = save(tensors, metadata=metadata)
    path.write_bytes(data)
    checksum_path(path).write_text(f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")


def rewrite_tensor(path: Path, key: str, value: np.ndarray | None,
                   metadata: dict | None = None) -> None:
    """Replace one array (and the header) of a shard, stored as the shard's format stores it
    (format 2: a zstd frame, its dtype and shape in the header's table), and recompute its
    checksum (a consistent, bad shard)."""
    with safe_open(str(path), framework="np") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        metadata = metadata or handle.metadata()
    if value is not None:
        header = json.loads(metadata[HEADER_KEY])
        if header["format_version"] == 2:
            frames, table = compress_arrays({key: value})
            tensors.update(frames)
            header["arrays"].update(table)
            metadata = {HEADER_KEY: json.dumps(header)}
        else:
            tensors[key] = value
    save_consistent(path, tensors, metadata)


def damage_compressed_frames(copy: Path, other: Path) -> None:
    """Flip one byte inside episode 1's zstd-compressed frames, with a matching sidecar."""
    path = shard_path(copy, 1)
    with safe_open(str(path), framework="np") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    tensors["1/frames"][len(tensors["1/frames"]) // 2] ^= 0xFF
    save_consistent(path, tensors, metadata)


def test_corrupt_compressed_frames_are_named_and_repaired(clean, copy, capsys):
    damage_compressed_frames(copy, clean.parent / "other")
    assert cli.main(["verify", str(copy)]) == 2
    assert "shard-00001.safetensors: 1/frames does not decompress" in capsys.readouterr().out
    assert verify(copy, repair=True)["bad"] == {}
    assert files(copy) == files(clean)


def test_format_1_dataset_reads_verifies_and_repairs_in_format_1(clean, copy, capsys):
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
    manifest = json.loads((copy / "dataset.json").read_text())
    assert manifest["format_version"] == 1
    assert shard_metadata(shard_path(copy, 1))["dataset"] == manifest  # its identity, in format 1
    shard_path(copy, 2).unlink()  # resumed by generate: in format 1 too
    generate(GenerateConfig(out=str(copy), episodes=3, frames=5, size=32, shard_size=1, seed=0))
    assert files(copy) == old


def test_rewrite_dataset_compresses_a_format_1_dataset_back_to_the_same_bytes(clean, copy):
    rewrite_dataset(copy, 1)
    rewrite_dataset(copy, 2)
    assert files(copy) == files(clean)
    assert verify(copy)["bad"] == {}


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("key, value", [
    ("1/energy/total", np.full(5, np.nan)),
    ("1/frames", np.full((5, 32, 32, 3), np.nan, np.float32)),
    ("1/position", np.full((5, 5, 2), np.inf))])
def test_non_finite_shard_is_named_with_its_episode_and_repaired(clean, copy, capsys, key,
                                                                 value, version):
    if version == 1:
        rewrite_dataset(copy, 1)
    intact = files(copy)
    shape = EpisodeStore(copy)[1].states["position"].shape
    if key == "1/position":
        value = np.full(shape, np.inf)
    rewrite_tensor(shard_path(copy, 1), key, value)
    assert cli.main(["verify", str(copy)]) == 2
    out = capsys.readouterr().out
    assert "shard-00001.safetensors: episode 1 has" in out
    assert ("non-finite" in out) if "frames" not in key else ("float32 frames" in out)
    with pytest.raises(DataError, match="shard-00001.*episode 1"):
        EpisodeStore(copy)[1]
    assert cli.main(["verify", str(copy), "--repair"]) == 0
    assert files(copy) == intact  # repaired in the dataset's format, byte for byte


def dataset_bytes(root: Path) -> dict[str, bytes]:
    """Every file of a dataset (manifest, shards, sidecars, annotations), by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


VALUES = st.one_of(st.integers(-2, 40), st.text(max_size=4), st.booleans(), st.none(),
                   st.floats(allow_nan=False, allow_infinity=False), st.just({}),
                   st.lists(st.integers(0, 3), max_size=2))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_manifest_edit_is_reported_and_repair_changes_nothing(clean, data):
    manifest = json.loads((clean / "dataset.json").read_text())
    key = data.draw(st.sampled_from(sorted(manifest)), label="key")
    edited = json.loads(json.dumps(manifest))
    if key == "env" and data.draw(st.booleans(), label="nested"):
        sub = data.draw(st.sampled_from(sorted(manifest["env"])), label="env key")
        old = manifest["env"][sub]
        target, name = edited["env"], sub
    else:
        old, target, name = manifest[key], edited, key
    target[name] = data.draw(VALUES.filter(lambda v: json.dumps(v) != json.dumps(old)),
                             label="value")
    with tempfile.TemporaryDirectory() as temp:
        copy = Path(shutil.copytree(clean, Path(temp) / "copy"))
        (copy / "dataset.json").write_text(json.dumps(edited))
        before = dataset_bytes(copy)
        for repair in (False, True):
            out = io.StringIO()
            with redirect_stdout(out), pytest.raises(DataError) as error:
                verify_stage(VerifyConfig(path=str(copy), repair=repair))
            assert len(str(error.value).splitlines()) == 1
            assert key in out.getvalue() + str(error.value)
        assert dataset_bytes(copy) == before


def test_older_shards_without_a_stored_identity_still_check_the_env(clean, copy):
    for shard in range(3):
        path = shard_path(copy, shard)
        with safe_open(str(path), framework="np") as handle:
            key = next(iter(handle.keys()))
            header = json.loads(handle.metadata()["ia_world"])
        del header["dataset"]  # as written before shards stored their dataset identity
        rewrite_tensor(path, key, None, {"ia_world": json.dumps(header)})
    assert verify(copy)["bad"] == {}
    manifest = json.loads((copy / "dataset.json").read_text())
    manifest["env"] = {"name": "cradle", "id": "ia_world/Cradle-v0", "kwargs": {}}
    (copy / "dataset.json").write_text(json.dumps(manifest))
    before = dataset_bytes(copy)
    with pytest.raises(DataError, match="episodes simulated in .*Billiards.*refused"):
        verify_stage(VerifyConfig(path=str(copy), repair=True))
    assert dataset_bytes(copy) == before
