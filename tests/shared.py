"""What tests share beyond fixtures: directories made once per test run for its pytest-xdist workers,
and a share of the hypothesis profile's example count."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock
from hypothesis import settings

# The file that marks a shared directory as made: no part of what `make` left in it.
DONE_MARKER = ".made"
# For shutil.copytree: copies what `make` left, without the marker.
MADE = shutil.ignore_patterns(DONE_MARKER)


def shared_once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]) -> Path:
    """The directory `make` fills, made once per test run: pytest-xdist's workers each run a session of
    their own, under one base directory of the run, and the first to get here makes it while the
    others wait on its lock. Nothing is kept between runs, so no run sees another's code."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    directory = shared / "shared" / name
    directory.parent.mkdir(exist_ok=True)
    done = directory / DONE_MARKER
    with FileLock(directory.parent / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            make(directory)
            done.touch()
    return directory


def examples(share: float) -> int:
    """`share` of the hypothesis profile's example count (tests/conftest.py), at least one: for a property
    test whose example costs many times the usual one (a model fitted, a cold start), so that it stays
    within the suite's minutes in `ci` and still deepens under `make fuzz`."""
    return max(1, round(settings().max_examples * share))
