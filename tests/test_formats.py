"""Format versions: one check names the file and the versions it reads."""

import pytest

from ia_world.errors import CheckpointError, DataError
from ia_world.formats import UNVERSIONED, check_format_version, format_version


def test_supported_version_passes_and_others_name_the_file():
    assert check_format_version("d/dataset.json", 2, (1, 2)) == 2
    for found in (3, None, "1", True, 1.0):
        with pytest.raises(DataError, match=r"^d/dataset.json: format_version .*reads 1, 2"):
            check_format_version("d/dataset.json", found, (2, 1))
    with pytest.raises(CheckpointError, match="config.json"):
        check_format_version("w/config.json", 9, (1,), error=CheckpointError)


def test_missing_version_reads_as_unversioned():
    assert format_version({}) == UNVERSIONED
    assert format_version({"format_version": 4}) == 4


def test_checkpoint_and_metrics_carry_versions_and_old_ones_still_read(tmp_path):
    import json

    from ia_world.checkpoint import (
        CONFIG_FILE,
        METRICS_FILE,
        checkpoint_model_config,
        read_metrics,
        write_initial_checkpoint,
    )

    checkpoint = write_initial_checkpoint(tmp_path / "run", seed=3)
    config = json.loads((checkpoint / CONFIG_FILE).read_text())
    metrics = json.loads((checkpoint / METRICS_FILE).read_text())
    assert config["format_version"] == 1 and metrics["format_version"] == 1
    assert read_metrics(checkpoint / METRICS_FILE) == {"step": 0}
    model = checkpoint_model_config(checkpoint)
    del config["format_version"]  # written before versions: version 0 has version 1's layout
    (checkpoint / CONFIG_FILE).write_text(json.dumps(config))
    assert checkpoint_model_config(checkpoint) == model
    (checkpoint / CONFIG_FILE).write_text(json.dumps({**config, "format_version": 7}))
    with pytest.raises(CheckpointError, match=r"config.json: format_version 7"):
        checkpoint_model_config(checkpoint)
