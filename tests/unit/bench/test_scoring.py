"""The scoring benchmark refuses to run without a built package, naming the fix. (It is run whole on the
built package by tests/integration/test_score_file.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest


def test_the_scoring_bench_needs_a_built_package(tmp_path: Path) -> None:
    from bench import scoring

    with pytest.raises(SystemExit) as exit_:
        scoring.main(["--package", str(tmp_path)])

    assert str(exit_.value) == f"no built package at {tmp_path}: run make build first"
