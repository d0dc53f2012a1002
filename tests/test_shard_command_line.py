"""`remediator run --shard N/M` refuses a shard outside 0..M-1 before it starts anything."""

from __future__ import annotations

import pytest

from remediator import cli


@pytest.mark.parametrize("shard", ["3/3", "1/0", "one/3", "2"])
def test_a_shard_outside_0_to_m_minus_1_is_a_usage_error_saying_what_is_expected(
        shard: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--shard", shard])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "--shard" in error and "expected N/M" in error and repr(shard) in error
