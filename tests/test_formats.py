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
