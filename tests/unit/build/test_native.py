"""Building the tree engine's C walk (build/native.py): built only where the build machine runs
the package's architecture and has a C compiler, again only when its source changed; otherwise
none, with the reason in the build's log, and the numpy walk serves.

The rules of when and where are checked on a stand-in source with the walk's four scoring
functions and nothing else, compiled with the build's flags: tree_walk.c itself costs about 10 s
of -O3 a build. The real walk is the session's (tests/conftest.py builds it as the build does):
the first test loads it, and tests/unit/serving/engines/test_native.py walks with it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from build import HOST_ARCHITECTURE
from build.native import compile_tree_walk
from build.package import LAMBDA_PLATFORMS
from serving.engines import native

OTHER_ARCHITECTURE = next(architecture for architecture in LAMBDA_PLATFORMS if architecture != HOST_ARCHITECTURE)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    stand_in = tmp_path / "tree_walk.c"
    stand_in.write_text(
        "".join(f'__attribute__((visibility("default"))) void {name}(void) {{}}\n' for name in native.SCORE_FUNCTIONS)
    )
    return stand_in


def test_the_walk_is_built_for_this_machine_and_loads(source: Path, tmp_path: Path) -> None:
    assert compile_tree_walk(HOST_ARCHITECTURE) == native.LIBRARY
    assert native.load(native.LIBRARY) is not None
    library = compile_tree_walk(HOST_ARCHITECTURE, tmp_path / "walk.so", source=source)
    assert library == tmp_path / "walk.so"
    assert native.load(library) is not None
    assert [path.name for path in tmp_path.iterdir() if ".partial" in path.name] == []


def test_for_another_architecture_no_walk_ships_and_the_log_says_why(
    source: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The gate must run what ships: a library of this machine's architecture is removed."""
    library = compile_tree_walk(HOST_ARCHITECTURE, tmp_path / "walk.so", source=source)
    assert library is not None
    with caplog.at_level(logging.WARNING):
        assert compile_tree_walk(OTHER_ARCHITECTURE, library, source=source) is None
    assert not library.exists()
    assert (
        f"the tree engine will walk with numpy: its C walk is built only on Linux {OTHER_ARCHITECTURE}" in caplog.text
    )


def test_without_a_compiler_no_walk_ships_and_the_log_says_why(
    source: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert compile_tree_walk(HOST_ARCHITECTURE, tmp_path / "walk.so", compiler="no-such-cc", source=source) is None
    assert "no C compiler (no-such-cc)" in caplog.text
    assert not (tmp_path / "walk.so").exists()


def test_a_source_the_compiler_refuses_leaves_no_library_and_names_the_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "tree_walk.c"
    broken.write_text("this is not C\n")
    with caplog.at_level(logging.WARNING):
        assert compile_tree_walk(HOST_ARCHITECTURE, tmp_path / "walk.so", source=broken) is None
    assert "could not build its C walk" in caplog.text
    assert "error" in caplog.text
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tree_walk.c"]


def test_the_walk_is_built_again_only_when_its_source_changed(source: Path, tmp_path: Path) -> None:
    library = compile_tree_walk(HOST_ARCHITECTURE, tmp_path / "walk.so", source=source)
    assert library is not None
    built = library.stat().st_mtime_ns
    os.utime(source, ns=(built - 10**9, built - 10**9))
    compile_tree_walk(HOST_ARCHITECTURE, library, source=source)
    assert library.stat().st_mtime_ns == built
    os.utime(source, ns=(built + 10**9, built + 10**9))
    compile_tree_walk(HOST_ARCHITECTURE, library, source=source)
    assert library.stat().st_mtime_ns != built
