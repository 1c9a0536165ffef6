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
from ia_world.data.shards import EpisodeStore, checksum_path, shard_path
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


def rewrite_tensor(path: Path, key: str, value: np.ndarray | None,
                   metadata: dict | None = None) -> None:
    """Replace one tensor (and the header) of a shard and recompute its checksum (a
    consistent, bad shard)."""
    with safe_open(str(path), framework="np") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        metadata = metadata or handle.metadata()
    if value is not None:
        tensors[key] = value
    data = save(tensors, metadata=metadata)
    path.write_bytes(data)
    checksum_path(path).write_text(f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")


@pytest.mark.parametrize("key, value", [
    ("1/energy/total", np.full(5, np.nan)),
    ("1/frames", np.full((5, 32, 32, 3), np.nan, np.float32)),
    ("1/position", np.full((5, 5, 2), np.inf))])
def test_non_finite_shard_is_named_with_its_episode_and_repaired(clean, copy, capsys, key,
                                                                 value):
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
    assert files(copy) == files(clean)


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
