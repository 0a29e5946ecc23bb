"""Packaging helpers: the pins the build trains with, and the size guard."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
import sys
from importlib import metadata
from importlib.util import cache_from_source
from pathlib import Path
from types import SimpleNamespace

import pytest
import xgboost

from build import (
    DEFAULT_SPEC,
    HOST_ARCHITECTURE,
    MODEL_SOURCE_VARIABLE,
    PROJECT_ROOT,
    package,
    sizes,
    train,
    unpackaged_model_dir,
)
from build.bake import COMPILED_FILE
from build.bytecode import ColdPath
from build.package import BuildError, check_training_environment, pinned_versions
from serving.config import PACKAGE_MODEL_DIR
from serving.engines import native
from serving.manifest import MANIFEST_FILE
from tests.unit.build.conftest import fake_package, gblinear_spec, logging_unconfigured

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
    assert (out / "serving" / "engines" / "tree_engine.py").is_file()
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


@pytest.mark.slow
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


def test_training_on_another_python_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package, "sys", SimpleNamespace(version_info=(3, 13, 1, "final", 0), version="3.13.1 (main)"))

    with pytest.raises(BuildError, match=r"^the build must run on Python 3\.12, not 3\.13\.1$"):
        check_training_environment(FUNCTION_REQUIREMENTS)


def test_every_library_that_differs_from_its_pin_is_named(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    pins = FUNCTION_REQUIREMENTS.read_text()
    requirements.write_text(
        pins.replace("scikit-learn==", "scikit-learn==0.0.0+").replace("\nnumpy==", "\nnumpy==0.1+")
    )

    with pytest.raises(BuildError) as refused:
        check_training_environment(requirements)

    sklearn, numpy = metadata.version("scikit-learn"), metadata.version("numpy")
    head, _, rest = str(refused.value).partition(": ")
    listed, _, advice = rest.partition(". ")
    assert head == f"the training environment differs from the function's pins in {requirements}"
    assert set(listed.split("; ")) == {
        f"scikit-learn {sklearn} installed, 0.0.0+{sklearn} pinned",
        f"numpy {numpy} installed, 0.1+{numpy} pinned",
    }
    assert advice == "Run `make setup` to sync it."


@pytest.mark.parametrize("library", ["scikit-learn", "numpy", "scipy", "joblib"])
@pytest.mark.parametrize("component", [0, 1, 2])
def test_a_pin_one_release_away_in_any_version_component_is_refused(
    tmp_path: Path, library: str, component: int
) -> None:
    """A patch release is another library for bitwise answers (another numpy, another exp):
    the installed version must be the pinned one exactly, not just its major and minor."""
    installed = metadata.version(library)
    parts = installed.split(".")
    parts[component] = str(int(parts[component]) + 1)
    pinned = ".".join(parts)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        FUNCTION_REQUIREMENTS.read_text().replace(f"\n{library}=={installed}", f"\n{library}=={pinned}")
    )

    with pytest.raises(BuildError, match=re.escape(f": {library} {installed} installed, {pinned} pinned. Run")):
        check_training_environment(requirements)


# What the Lambda runtime provides, what only scikit-learn needs, what only a DataFrame needs, and
# what every package needs, as a compiled requirements file has them.
MIXED_PINS = (
    "boto3==1.35.0             # via aws-lambda-powertools\n"
    "scipy==1.14.0             # via scikit-learn\n"
    "pandas==2.2.0             # via -r requirements.in\n"
    "numpy==2.1.0              # via -r requirements.in\n"
    "--hash=sha256:0123\n"
)


@pytest.mark.parametrize(
    ("engine", "dataframe_input", "kept", "reasons"),
    [
        (
            "compiled",
            False,
            ["numpy==2.1.0"],
            [
                "leaving out boto3: the Lambda runtime provides it (via aws-lambda-powertools)",
                "leaving out scipy: the compiled engine does not need it",
                "leaving out pandas: the model is not called with a DataFrame",
            ],
        ),
        (
            "scikit-learn",
            True,
            ["scipy==1.14.0", "pandas==2.2.0", "numpy==2.1.0"],
            ["leaving out boto3: the Lambda runtime provides it (via aws-lambda-powertools)"],
        ),
    ],
)
def test_the_pins_installed_are_those_the_engine_needs_and_each_left_out_is_explained(
    engine: str,
    dataframe_input: bool,
    kept: list[str],
    reasons: list[str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(MIXED_PINS)
    caplog.set_level(logging.INFO, logger=package.__name__)

    (tmp_path / "scratch").mkdir()

    written = package.lambda_requirements(requirements, tmp_path / "scratch", engine, dataframe_input)

    assert written.parent == tmp_path / "scratch"
    assert [line.split()[0] for line in written.read_text().splitlines() if "==" in line] == kept
    assert written.read_text().endswith("\n")
    assert pinned_versions(written) == {line.split("==")[0]: line.split("==")[1] for line in kept}
    assert caplog.messages == reasons


@pytest.mark.parametrize("architecture", sorted(package.LAMBDA_PLATFORMS))
def test_pip_is_asked_for_binary_wheels_of_the_lambda_platform_only(architecture: str, tmp_path: Path) -> None:
    # pip's own parser reads the command: each option means to pip what the build needs.
    from pip._internal.commands import create_command

    command = package.pip_install_command(tmp_path / "pins.txt", tmp_path / "package", architecture)
    options, arguments = create_command("install").parse_args(command[4:])

    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    assert arguments == []
    assert options.requirements == [str(tmp_path / "pins.txt")]
    assert options.target_dir == str(tmp_path / "package")
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}[architecture]
    assert options.platforms == [f"manylinux2014_{machine}", f"manylinux_2_28_{machine}"]
    assert (options.implementation, options.python_version) == ("cp", (3, 12))
    assert options.format_control.only_binary == {":all:"}
    assert options.compile is False
    assert options.ignore_dependencies is True
    assert (options.quiet, options.disable_pip_version_check) == (1, True)


def test_a_failed_pip_install_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=package.__name__)
    asked: list[tuple[Path, Path, str]] = []

    def failing_pip(requirements: Path, target: Path, architecture: str) -> list[str]:
        asked.append((requirements, target, architecture))
        return [sys.executable, "-c", "raise SystemExit(3)"]

    monkeypatch.setattr(package, "pip_install_command", failing_pip)

    with pytest.raises(BuildError) as failed:
        package.install_dependencies(tmp_path / "pins.txt", tmp_path / "package", "arm64")

    assert str(failed.value) == (
        "pip could not install pins.txt for python3.12 arm64 (exit status 3): "
        "check that PyPI is reachable (pip's error is above)"
    )
    assert caplog.messages == ["installing pinned dependencies for python3.12 arm64"]
    assert asked == [(tmp_path / "pins.txt", tmp_path / "package", "arm64")]


@pytest.mark.slow
def test_a_requirement_pip_cannot_read_fails_the_build_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real pip, refusing a requirements file before it reaches any index: the build's last line
    names what failed, with no traceback."""
    pins = tmp_path / "requirements.txt"
    pins.write_text("numpy==\n")

    def build_that_installs(target: Path, architecture: str, engine: str, spec_path: Path, model_source: str) -> None:
        package.install_dependencies(pins, target, architecture)

    monkeypatch.setattr(package, "build_package", build_that_installs)

    with logging_unconfigured(), pytest.raises(SystemExit) as exited:
        package.main(["--out", str(tmp_path / "package")])

    out = capsys.readouterr().out
    assert exited.value.code == 1
    assert out.splitlines()[-1] == (
        "[build] build failed: pip could not install requirements.txt for python3.12 x86_64 (exit status 1): "
        "check that PyPI is reachable (pip's error is above)"
    )
    assert "Traceback" not in out


def write_files(root: Path, names: list[str]) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("VALUE = 1\n")


# A dependency with a sub-package no sample event imports, and the packages tracing imports.
DEPENDENCY_FILES = ["dependency/__init__.py", "dependency/used.py", "dependency/unused/__init__.py"]
TRACING_FILES = ["aws_xray_sdk/core/__init__.py", "wrapt/__init__.py", "aws_lambda_powertools/tracing/tracer.py"]


def test_the_host_build_smoke_tests_prunes_and_compiles_but_never_prunes_the_functions_code(
    tmp_path: Path,
    offline_build: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = tmp_path / "artifacts" / "PredictFunction"
    traced: list[list[Path]] = []

    def install(requirements: Path, target: Path, architecture: str) -> None:
        write_files(target, [*DEPENDENCY_FILES, *TRACING_FILES, "aws_lambda_powertools/logging/logger.py"])

    def trace(target: Path, events: list[Path]) -> ColdPath:
        traced.append(events)
        assert all(event.is_file() for event in events)
        # The sample events imported the app, the top of the function's package and one module of the dependency.
        return ColdPath(
            statuses={},
            modules=[target / "app.py", target / "serving" / "__init__.py", target / "dependency" / "used.py"],
        )

    def compile_and_check(target: Path, events: list[Path], modules: list[Path]) -> None:
        compiled.append((target, events, modules))

    compiled: list[tuple[Path, list[Path], list[Path]]] = []
    monkeypatch.setattr(package, "install_dependencies", install)
    monkeypatch.setattr(package, "trace_cold_path", trace)
    monkeypatch.setattr(package, "compile_cold_path", compile_and_check)
    monkeypatch.setenv("ARTIFACTS_DIR", str(out))
    caplog.set_level(logging.INFO, logger=package.__name__)

    package.main([])

    [events] = traced
    # Bytecode for what answering the events imported, then proven by answering the same events again.
    assert compiled == [
        (out, events, [out / "app.py", out / "serving" / "__init__.py", out / "dependency" / "used.py"])
    ]
    sample_events = sorted((PROJECT_ROOT / "events").glob("*.json"))
    assert events[: len(sample_events)] == sample_events
    assert [event.name for event in events[len(sample_events) :]] == [f"model-check-{n}.json" for n in range(3)]
    assert not any(event.exists() for event in events[len(sample_events) :])
    own_code = [
        path.relative_to(package.FUNCTION_DIR)
        for path in package.FUNCTION_DIR.rglob("*.py")
        if "__pycache__" not in path.parts
    ]
    assert own_code
    assert all((out / path).is_file() for path in own_code)
    # The tree engine's C walk, built for this machine, which runs the package's architecture.
    assert native.load(out / "serving" / "engines" / native.LIBRARY.name) is not None
    assert not (out / "dependency" / "unused").exists()
    assert (out / "dependency" / "used.py").is_file()
    for name in TRACING_FILES:
        assert Path(cache_from_source(str(out / name))).is_file(), name
    assert not Path(cache_from_source(str(out / "aws_lambda_powertools/logging/logger.py"))).exists()
    assert "copying function code from functions/predict" in caplog.messages
    assert any(message.startswith("package size: ") for message in caplog.messages)


def test_a_build_for_another_architecture_is_not_run_and_ships_bytecode_for_every_module(
    tmp_path: Path,
    offline_build: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    other = next(architecture for architecture in package.LAMBDA_PLATFORMS if architecture != HOST_ARCHITECTURE)

    def cannot_run(target: Path, events: list[Path]) -> ColdPath:
        raise AssertionError(f"a package for {other} cannot run on {HOST_ARCHITECTURE}")

    monkeypatch.setattr(package, "trace_cold_path", cannot_run)
    # The C walk this machine built stays for the other tests; the build removes it for `other`.
    monkeypatch.setattr(native, "LIBRARY", tmp_path / native.LIBRARY.name)
    caplog.set_level(logging.INFO)
    out = tmp_path / "PredictFunction"

    package.main(["--out", str(out), "--architecture", other])

    assert other in offline_build
    modules = list(out.rglob("*.py"))
    assert (out / "app.py") in modules
    assert all(Path(cache_from_source(str(module))).is_file() for module in modules)
    assert (
        f"building for {other} on {HOST_ARCHITECTURE}: the package cannot run here, so it is not smoke-tested, "
        "pruned or stripped, and every module gets bytecode"
    ) in caplog.messages
    assert any(message.startswith("package size: ") for message in caplog.messages)
    # Its gate ran the numpy walk, which ships: no C walk of this machine's architecture.
    assert not (out / "serving" / "engines" / native.LIBRARY.name).exists()
    assert any(message.startswith("the tree engine will walk with numpy") for message in caplog.messages)


def test_a_package_over_the_size_limit_fails_the_build_saying_so_on_stdout(
    tmp_path: Path,
    offline_build: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sizes, "UNZIPPED_LIMIT_BYTES", 1000)

    with logging_unconfigured(), pytest.raises(SystemExit) as exited:
        package.main(["--out", str(tmp_path / "PredictFunction")])

    # sam build shows the Makefile's stdout: every step, then the reason it failed.
    assert exited.value.code == 1
    lines = capsys.readouterr().out.splitlines()
    assert f"[build] building the model spec {DEFAULT_SPEC} (iris-random-forest), engine: auto" in lines
    assert lines[-1].startswith("[build] build failed: package is ")
    assert "MB unzipped, over Lambda's 0.0 MB limit" in lines[-1]


def test_the_package_directory_is_required(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ARTIFACTS_DIR", raising=False)

    with pytest.raises(SystemExit) as exited:
        package.main([])

    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(" error: --out is required when ARTIFACTS_DIR is not set")


def test_the_commands_help_describes_it_and_its_options(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "300")

    with pytest.raises(SystemExit) as exited:
        package.main(["--help"])

    assert exited.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert package.__doc__ is not None
    assert " ".join(package.__doc__.split()) in shown
    assert " --out OUT package directory (default: $ARTIFACTS_DIR, set by sam build) --architecture " in shown
    assert (
        " --engine {auto,compiled,scikit-learn} how the model is served: auto compiles what the compiled engines "
        "support and keeps scikit-learn for the rest (saying why); compiled fails instead --spec "
    ) in shown
    assert shown.endswith(
        " --model-source {package,s3} package: the model ships in the package; s3: it is left out, for"
        " `make publish` and the ModelBucket parameter (default: $MODEL_SOURCE, else package)"
    )


def test_only_lambdas_architectures_are_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        package.main(["--out", "unused", "--architecture", "ppc64le"])

    assert exited.value.code == 2
    assert (
        "argument --architecture: invalid choice: 'ppc64le' (choose from 'arm64', 'x86_64')" in capsys.readouterr().err
    )


def test_the_build_exits_non_zero_when_the_package_answers_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The real build, with pip replaced by nothing and the function's code by a handler answering 500.
    monkeypatch.setattr(train, "MODEL_CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(package, "install_dependencies", lambda requirements, target, architecture: None)
    monkeypatch.setattr(
        package,
        "copy_function_code",
        lambda source, target: fake_package(target, "return {'statusCode': 500, 'body': ''}"),
    )

    with pytest.raises(SystemExit) as exited:
        package.main(["--out", str(tmp_path / "PredictFunction")])

    assert exited.value.code == 1
    assert "build failed: the package answered sample events with server errors: {" in caplog.text


def test_a_model_too_large_for_the_package_builds_for_the_s3_model_source(
    tmp_path: Path,
    offline_build: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = tmp_path / "PredictFunction"
    package.main(["--out", str(out), "--model-source", "s3"])
    without_model = sizes.measure(out).unzipped_bytes
    # Room for everything but the model.
    monkeypatch.setattr(sizes, "UNZIPPED_LIMIT_BYTES", without_model)

    with pytest.raises(SystemExit):
        package.main(["--out", str(out)])
    package.main(["--out", str(out), "--model-source", "s3"])

    (failure,) = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert "\n" not in failure
    assert re.search(
        r"over Lambda's .* limit; .*`make publish BUCKET=<versioned bucket>` \(builds with MODEL_SOURCE=s3", failure
    )
    assert not (out / PACKAGE_MODEL_DIR).exists()
    left_out = unpackaged_model_dir(out)
    engine_file = json.loads((left_out / MANIFEST_FILE).read_text())["engine"]["file"]
    assert (left_out / engine_file).is_file()


def test_the_model_source_is_read_from_the_environment(
    tmp_path: Path,
    offline_build: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(MODEL_SOURCE_VARIABLE, "s3")
    caplog.set_level(logging.INFO, logger=package.__name__)
    out = tmp_path / "PredictFunction"

    package.main(["--out", str(out)])

    assert (unpackaged_model_dir(out) / MANIFEST_FILE).is_file()
    assert not (out / PACKAGE_MODEL_DIR).exists()
    assert (
        f"model left out of the package, kept at {unpackaged_model_dir(out)}: `make publish BUCKET=...` uploads it"
    ) in caplog.messages


def test_a_model_served_through_its_library_gets_the_library_installed_at_the_builds_version(
    tmp_path: Path, offline_build: dict[str, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    spec = gblinear_spec(tmp_path)
    caplog.set_level(logging.INFO, logger=package.__name__)

    with xgboost.config_context(verbosity=0):
        package.main(["--out", str(tmp_path / "PredictFunction"), "--spec", str(spec)])

    assert "xgboost-cpu" in offline_build["x86_64"]
    version = pinned_versions(package.BUILD_REQUIREMENTS)["xgboost-cpu"]
    assert f"adding xgboost-cpu {version}: the model is served through it" in caplog.messages


def test_a_package_build_removes_the_model_a_previous_s3_build_left_out(
    tmp_path: Path, offline_build: dict[str, list[str]]
) -> None:
    out = tmp_path / "PredictFunction"
    package.main(["--out", str(out), "--model-source", "s3"])

    package.main(["--out", str(out)])

    assert (out / PACKAGE_MODEL_DIR / MANIFEST_FILE).is_file()
    assert not unpackaged_model_dir(out).exists()
