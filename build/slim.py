"""Leave out of the package what never runs on Lambda.

Test suites inside dependencies, type stubs, C/Cython sources and headers, console
scripts, caches. Shared libraries are never touched: stripping the ones under `*.libs/`
breaks scipy.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from serving.cold_start import LEFT_OUT

log = logging.getLogger(__name__)

UNUSED_DIRECTORIES = ("tests", "__pycache__")
UNUSED_TOP_LEVEL = ("bin",)
UNUSED_SUFFIXES = (".pyi", ".pyx", ".pxd", ".pxi", ".c", ".cpp", ".h", ".hpp")
# Never used by this function, yet imported: pydantic's v1 compatibility layer. FastAPI imports
# it only to refuse v1 models and treats its absence as "no v1 models" (about 20 ms of cold start);
# the function records it as absent (serving/cold_start.py), so that FastAPI's probes fail at once.
UNUSED_SUBPACKAGES = tuple(name.replace(".", "/") for name in LEFT_OUT)
# Packages the Lambda Python runtime already provides, for boto3: not shipped again, except
# where the package itself needs them (RUNTIME_COPY_NOT_ENOUGH).
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "urllib3", "python-dateutil", "six"})
# The runtime's copies serve boto3; pandas (shipped for a DataFrame-fitted model) imports
# dateutil itself, at the version the function pins, and the runtime's is not on its path for it
# to rely on: shipped with pandas.
RUNTIME_COPY_NOT_ENOUGH = {"pandas": frozenset({"python-dateutil", "six"})}


@dataclass(frozen=True)
class SlimReport:
    files: int
    bytes: int


def _size(path: Path) -> tuple[int, int]:
    if path.is_file():
        return 1, path.stat().st_size
    files = [child for child in path.rglob("*") if child.is_file()]
    return len(files), sum(child.stat().st_size for child in files)


def slim(package: Path) -> SlimReport:
    """Delete unused files in `package`, keeping every module, extension and data file that can run."""
    doomed = [package / name for name in UNUSED_TOP_LEVEL + UNUSED_SUBPACKAGES if (package / name).is_dir()]
    doomed += [path for path in package.rglob("*") if path.is_dir() and path.name in UNUSED_DIRECTORIES]
    doomed += [path for path in package.rglob("*") if path.is_file() and path.suffix in UNUSED_SUFFIXES]
    removed_files = removed_bytes = 0
    for path in sorted(doomed, key=lambda p: len(p.parts)):
        if not path.exists():
            continue
        files, size = _size(path)
        removed_files += files
        removed_bytes += size
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    log.info("left out %d unused files (%.1f MB): tests, stubs, sources, scripts", removed_files, removed_bytes / 1e6)
    return SlimReport(files=removed_files, bytes=removed_bytes)


def prune_unimported_subpackages(package: Path, imported: list[Path], keep: tuple[str, ...]) -> SlimReport:
    """Delete the sub-packages of imported dependencies that no module was imported from.

    `imported` is what the package imported while answering every sample event; a
    sub-package none of it came from (scipy.io, sklearn.cluster, ...) is dead weight in
    this function. Top-level packages, and the function's own code in `keep`, stay whole.
    """
    used = {path.resolve() for path in imported}
    used_dirs = {parent for path in used for parent in path.parents}
    doomed = []
    for top in package.iterdir():
        if not top.is_dir() or top.name in keep or top.resolve() not in used_dirs:
            continue
        for init in sorted(top.rglob("__init__.py"), key=lambda p: len(p.parts)):
            directory = init.parent.resolve()
            if directory not in used_dirs and not any(d in doomed for d in directory.parents):
                doomed.append(directory)
    removed_files = removed_bytes = 0
    for directory in doomed:
        files, size = _size(directory)
        removed_files += files
        removed_bytes += size
        shutil.rmtree(directory)
    log.info(
        "left out %d sub-packages no sample event imports (%d files, %.1f MB), e.g. %s",
        len(doomed),
        removed_files,
        removed_bytes / 1e6,
        ", ".join(str(d.relative_to(package.resolve())) for d in doomed[:5]),
    )
    return SlimReport(files=removed_files, bytes=removed_bytes)


def strip_shared_objects(package: Path) -> SlimReport:
    """Strip symbols from extension modules; never from the vendored libraries under `*.libs/`."""
    targets = [path for path in package.rglob("*.so") if not any(p.name.endswith(".libs") for p in path.parents)]
    strip = shutil.which("strip")
    if strip is None:
        log.warning("strip not found (it comes with binutils): shared objects are shipped unstripped")
        return SlimReport(files=0, bytes=0)
    if not targets:
        return SlimReport(files=0, bytes=0)
    before = sum(path.stat().st_size for path in targets)
    subprocess.run([strip, "--strip-unneeded", *map(str, targets)], check=True)
    saved = before - sum(path.stat().st_size for path in targets)
    log.info("stripped symbols from %d extension modules (%.1f MB), none under *.libs/", len(targets), saved / 1e6)
    return SlimReport(files=len(targets), bytes=saved)
