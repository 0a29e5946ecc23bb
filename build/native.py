"""Compile the tree engine's C walk (functions/predict/serving/engines/tree_walk.c) beside its
loader, serving/engines/native.py, which says why it exists.

Built in place, as `setup.py build_ext --inplace` would: the build's exactness gate, the tests and
the package all load the one library the build machine compiled. Only where the build machine
runs Linux on the package's architecture (the gate must run what ships); elsewhere, or without a
C compiler, nothing is built and the numpy walk serves, with the reason in the build's log.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from build import HOST_ARCHITECTURE
from serving.engines import native

log = logging.getLogger(__name__)

# No libc (-nostdlib: the library loads on any Linux of its architecture), no fast-math and no
# contraction (the additions stay the numpy walk's), hidden symbols but the scoring functions.
FLAGS = (
    "-O3",
    "-std=c11",
    "-shared",
    "-fPIC",
    "-nostdlib",
    "-fno-fast-math",
    "-ffp-contract=off",
    "-fno-stack-protector",
    # Loops stay loops: GCC would otherwise turn some into calls to libc's memset.
    "-fno-tree-loop-distribute-patterns",
    "-fvisibility=hidden",
    "-Wall",
    "-Werror",
)


def compile_tree_walk(
    architecture: str,
    library: Path | None = None,
    compiler: str | None = None,
    source: Path | None = None,
    defines: tuple[str, ...] = (),
) -> Path | None:
    """The library compiled for `architecture` (again only when its source or flags are newer), or None
    with the reason logged: the numpy walk will serve. `defines` (NAME=VALUE) override
    tree_walk.c's tuning constants, for the tests that walk with other block sizes."""
    library = library or native.LIBRARY
    source = source or native.SOURCE
    if sys.platform != "linux" or architecture != HOST_ARCHITECTURE:
        library.unlink(missing_ok=True)
        log.warning(
            "the tree engine will walk with numpy: its C walk is built only on Linux %s, this is %s %s",
            architecture,
            sys.platform,
            platform.machine(),
        )
        return None
    compiler = compiler or os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        library.unlink(missing_ok=True)
        log.warning("the tree engine will walk with numpy: no C compiler (%s) to build its C walk", compiler)
        return None
    # Built again when its source or this module (its flags) changed since.
    if library.exists() and library.stat().st_mtime >= max(source.stat().st_mtime, Path(__file__).stat().st_mtime):
        return library
    # Written beside, then renamed: a concurrent build or test worker never loads half a file.
    with tempfile.NamedTemporaryFile(dir=library.parent, suffix=".so.partial", delete=False) as partial:
        partial_path = Path(partial.name)
    try:
        compiled = subprocess.run(
            [compiler, *FLAGS, *(f"-D{define}" for define in defines), "-o", str(partial_path), str(source)],
            capture_output=True,
            text=True,
        )
        if compiled.returncode != 0:
            log.warning(
                "the tree engine will walk with numpy: %s could not build its C walk: %s",
                compiler,
                next(
                    (line for line in compiled.stderr.splitlines() if "error" in line),
                    f"exit status {compiled.returncode}",
                ),
            )
            return None
        partial_path.replace(library)
    finally:
        partial_path.unlink(missing_ok=True)
    log.info("built the tree engine's C walk with %s", compiler)
    return library
