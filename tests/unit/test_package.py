"""Packaging helpers: the pins the build trains with, and the size guard."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from build import package, sizes, train
from build.bake import COMPILED_FILE
from build.bytecode import ColdPath
from build.package import BuildError, check_training_environment, pinned_versions
from serving.config import PACKAGE_MODEL_DIR
from serving.manifest import MANIFEST_FILE

FUNCTION_REQUIREMENTS = package.FUNCTION_DIR / "requirements.txt"


def test_pins_are_read_from_a_compiled_requirements_file(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "# comment\nscikit_learn==1.9.1      # via -r requirements.in\nNumPy==2.5.5\n--hash=sha256:abc\nmangum>=0.1\n"
    )

    assert pinned_versions(requirements) == {"scikit-learn": "1.9.1", "numpy": "2.5.5"}


def test_training_environment_matches_the_function_pins() -> None:
    pins = pinned_versions(FUNCTION_REQUIREMENTS)

    check_training_environment(FUNCTION_REQUIREMENTS)
    for library in ("scikit-learn", "numpy", "scipy", "joblib"):
        assert pins[library] == metadata.version(library)


def test_training_with_other_library_versions_is_refused(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(FUNCTION_REQUIREMENTS.read_text().replace("scikit-learn==", "scikit-learn==0.0.0+"))

    with pytest.raises(BuildError, match=r"scikit-learn .* installed, 0\.0\.0\+.* pinned.*make setup"):
        check_training_environment(requirements)


def test_every_platform_is_asked_for_with_both_manylinux_tags() -> None:
    for tags in package.LAMBDA_PLATFORMS.values():
        assert [tag.split("_", 1)[0] for tag in tags] == ["manylinux2014", "manylinux"]


def make_tree(root: Path, files: dict[str, int]) -> Path:
    for name, size in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    return root


def test_size_report_counts_and_ranks_top_level_entries(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"big/a.so": 3_000_000, "big/b.py": 1_000_000, "small/c.py": 500, "app.py": 100})

    report = sizes.measure(tree)

    assert report.unzipped_bytes == 4_000_600
    assert report.files == 4
    assert report.by_top_level == [("big", 4_000_000), ("small", 500), ("app.py", 100)]
    assert 0 < report.zipped_bytes < 100_000
    assert "package size: 4.0 MB unzipped" in report.render()
    report.check_limit()


def test_size_guard_fails_over_the_lambda_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = sizes.measure(make_tree(tmp_path, {"scipy/huge.so": 2_000_000}))
    monkeypatch.setattr(sizes, "UNZIPPED_LIMIT_BYTES", 1_000_000)

    with pytest.raises(
        sizes.PackageTooLargeError, match=r"2\.0 MB unzipped, over Lambda's 1\.0 MB limit; .*scipy 2\.0"
    ):
        report.check_limit()


@pytest.fixture
def offline_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The build without pip and without running the package (the built-package tests do both):
    records which pins each install would have installed."""
    installed: dict[str, list[str]] = {}

    def record_install(requirements: Path, target: Path, architecture: str) -> None:
        installed[architecture] = [
            line.split("==")[0] for line in requirements.read_text().splitlines() if "==" in line
        ]

    monkeypatch.setattr(package, "install_dependencies", record_install)
    monkeypatch.setattr(train, "MODEL_CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(package, "trace_cold_path", lambda target, events: ColdPath(statuses={}, modules=[]))
    monkeypatch.setattr(package, "compile_cold_path", lambda target, events, modules: None)
    return installed


def test_build_compiles_the_forest_and_leaves_scikit_learn_out(
    tmp_path: Path, offline_build: dict[str, list[str]]
) -> None:
    out = tmp_path / "PredictFunction"
    (out / "stale").mkdir(parents=True)

    package.main(["--out", str(out)])

    manifest = json.loads((out / PACKAGE_MODEL_DIR / MANIFEST_FILE).read_text())
    compiled = out / PACKAGE_MODEL_DIR / COMPILED_FILE
    assert manifest["engine"] == {
        "name": "compiled",
        "file": COMPILED_FILE,
        "sha256": hashlib.sha256(compiled.read_bytes()).hexdigest(),
        "kind": "forest",
        "guarantee": "bitwise-anywhere",
        "dataframe_input": False,
    }
    assert not (out / PACKAGE_MODEL_DIR / train.MODEL_FILE).exists()
    assert {"scikit-learn", "scipy", "joblib", "threadpoolctl"}.isdisjoint(offline_build["x86_64"])
    assert {"numpy", "fastapi", "mangum", "pydantic", "aws-lambda-powertools"} <= set(offline_build["x86_64"])
    assert (out / "app.py").is_file()
    assert (out / "serving" / "engines" / "forest.py").is_file()
    assert not (out / "stale").exists()
    assert not (out / "Makefile").exists()
    assert not list(out.rglob("__pycache__"))


def test_build_with_the_scikit_learn_engine(tmp_path: Path, offline_build: dict[str, list[str]]) -> None:
    out = tmp_path / "PredictFunction"

    package.main(["--out", str(out), "--engine", "scikit-learn"])

    manifest = json.loads((out / PACKAGE_MODEL_DIR / MANIFEST_FILE).read_text())
    assert manifest["engine"] == {
        "name": "scikit-learn",
        "file": train.MODEL_FILE,
        "sha256": manifest["sha256"],
        "dataframe_input": False,
    }
    assert (out / PACKAGE_MODEL_DIR / train.MODEL_FILE).is_file()
    assert {"scikit-learn", "scipy", "joblib"} <= set(offline_build["x86_64"])


def test_compiled_model_file_is_reproducible(tmp_path: Path, offline_build: dict[str, list[str]]) -> None:
    package.main(["--out", str(tmp_path / "a")])
    package.main(["--out", str(tmp_path / "b")])

    a, b = (tmp_path / name / PACKAGE_MODEL_DIR / COMPILED_FILE for name in "ab")
    assert a.read_bytes() == b.read_bytes()


def test_build_failure_exits_non_zero_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(_requirements: Path) -> None:
        raise BuildError("scikit-learn 0.1 installed, 1.9.1 pinned")

    monkeypatch.setattr(package, "check_training_environment", refuse)

    with pytest.raises(SystemExit) as exited:
        package.main(["--out", str(tmp_path / "out")])

    assert exited.value.code == 1
    assert "build failed: scikit-learn 0.1 installed, 1.9.1 pinned" in caplog.text


@pytest.mark.parametrize(("architecture", "machine"), [("x86_64", "x86_64"), ("arm64", "aarch64")])
def test_the_build_fetches_wheels_for_the_chosen_architecture(architecture: str, machine: str, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    pins = pinned_versions(FUNCTION_REQUIREMENTS)
    requirements.write_text(f"numpy=={pins['numpy']}\npydantic-core=={pins['pydantic-core']}\n")
    report = tmp_path / "report.json"
    command = package.pip_install_command(requirements, tmp_path / "target", architecture)

    subprocess.run([*command, "--dry-run", "--report", str(report)], check=True, timeout=300)

    installs = json.loads(report.read_text())["install"]
    wheels = {item["metadata"]["name"].replace("_", "-").lower(): item["download_info"]["url"] for item in installs}
    assert set(wheels) == {"numpy", "pydantic-core"}
    assert all("cp312-cp312-manylinux" in url and url.endswith(f"{machine}.whl") for url in wheels.values()), wheels
