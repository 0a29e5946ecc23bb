"""`sam build` on a fresh clone: the function's Makefile, run as SAM runs it (in the project root,
with ARTIFACTS_DIR set), creates the build environment itself and builds the package. The
environment's creation is stubbed with this test's own environment, which has the same pins;
everything else is the real build, but for the tree engine's C walk: the clone has the one this
machine built (tests/conftest.py), newer than its source, so the build keeps it as it keeps it in
any checkout where it was built. Compiling it costs about 10 s of CPU; `make test`'s own build and
tests/unit/build/test_native.py check when it is built."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from build import PROJECT_ROOT
from build.inputs import input_files, is_fresh, spec_files
from local.lambda_local import DEFAULT_PACKAGE
from serving.config import PACKAGE_MODEL_DIR
from serving.engines import native
from serving.manifest import MANIFEST_FILE


def test_function_makefile_builds_a_fresh_clone_without_a_venv(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    # Only the inputs of the build's hash: the build must need nothing else.
    for path in [*input_files(PROJECT_ROOT), *spec_files(PROJECT_ROOT)]:
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / path, clone / path)
    shutil.copy(native.LIBRARY, clone / native.LIBRARY.relative_to(PROJECT_ROOT))
    stubs = tmp_path / "bin"
    stubs.mkdir()
    prepared = stubs / "prepared-venv-python"
    prepared.write_text(f'#!/bin/sh\n[ "$1 $2" = "-m pip" ] && exit 0\nexec {sys.executable} "$@"\n')
    python312 = stubs / "python3.12"
    python312.write_text(
        f'#!/bin/sh\n[ "$1 $2" = "-m venv" ] && mkdir -p "$3/bin" && cp {prepared} "$3/bin/python" && exit 0\n'
        f'exec {sys.executable} "$@"\n'
    )
    for stub in (prepared, python312):
        stub.chmod(0o755)
    package = clone / DEFAULT_PACKAGE.relative_to(PROJECT_ROOT)
    make = shutil.which("make")
    assert make

    result = subprocess.run(
        [make, "--makefile", "functions/predict/Makefile", "build-PredictFunction"],
        cwd=clone,
        env={"PATH": f"{stubs}:/usr/bin:/bin", "HOME": str(Path.home()), "ARTIFACTS_DIR": str(package)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("creating .venv with python3.12 and the pinned tools of requirements-dev.txt")
    assert (clone / ".venv" / ".installed").is_file()
    manifest = json.loads((package / PACKAGE_MODEL_DIR / MANIFEST_FILE).read_text())
    assert manifest["engine"]["name"] == "compiled"
    assert (package / "app.py").read_bytes() == (PROJECT_ROOT / "functions" / "predict" / "app.py").read_bytes()
    assert is_fresh(package, "x86_64", clone)
    assert "built the tree engine's C walk" not in result.stdout
    assert native.load(package / native.LIBRARY.relative_to(PROJECT_ROOT / "functions" / "predict")) is not None
