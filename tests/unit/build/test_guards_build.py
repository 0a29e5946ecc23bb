"""Build guards seen failing: the exactness gate's probes, the smoke test of the package on a tiny
fake package, and the size limit at Lambda's quota."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from build import DEFAULT_SPEC, engines, package, train
from build.bake import bake_model
from build.bytecode import SmokeTestError, trace_cold_path
from build.engines import ExactnessError
from build.sizes import PackageTooLargeError, SizeReport
from build.spec import load_spec
from build.train import check_rows

# Lambda's quota: 250 MB unzipped for a function and its layers, in MiB (AWS documentation).
LAMBDA_UNZIPPED_QUOTA = 250 * 1024 * 1024


def up_to_the_next_float32(thresholds: np.ndarray[Any, Any], avoided: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Each threshold moved up to the smallest float32 above it, unless that value is `avoided` or
    would reach the next threshold: the same split for every float32 input but that one, which now
    goes left (features are compared as float32, so no input lies between the two)."""
    as_float32 = thresholds.astype(np.float32)
    above = np.where(
        as_float32.astype(np.float64) > thresholds, as_float32, np.nextafter(as_float32, np.float32(np.inf))
    ).astype(np.float64)
    below_next = np.append(above[:-1] < thresholds[1:], True)
    return np.where(below_next & ~np.isin(above, avoided), above, thresholds)


def test_a_split_off_by_one_float32_is_caught_by_the_gates_probes(
    tmp_path: Path, training_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_spec(DEFAULT_SPEC)
    rows = check_rows(spec)
    # Every value a training or held-out row has, per feature, as the engine compares it.
    seen = np.concatenate([rows.train, rows.held_out]).astype(np.float32).astype(np.float64)
    real = engines.compile_estimator
    moved: list[int] = []

    def misplaced_thresholds(estimator: Any, prefix: str = "") -> dict[str, Any]:
        arrays: dict[str, Any] = real(estimator, prefix)
        for feature in range(seen.shape[1]):
            original = arrays[f"thresholds_{feature}"]
            arrays[f"thresholds_{feature}"] = up_to_the_next_float32(original, seen[:, feature])
            moved.append(int((arrays[f"thresholds_{feature}"] != original).sum()))
        return arrays

    monkeypatch.setattr("build.bake.compile_estimator", misplaced_thresholds)

    # The training and held-out rows cannot see such a split: only the probes can.
    with pytest.raises(ExactnessError, match=r"not exact: probes: predict(_proba)? differs"):
        bake_model(tmp_path / "package", "auto", training_dir, spec)
    assert sum(moved) > 0


def fake_package(directory: Path, handler_body: str) -> Path:
    """A package whose app.handler runs `handler_body` (standard library only)."""
    directory.mkdir(parents=True, exist_ok=True)
    source = "def handler(event, context):\n" + textwrap.indent(textwrap.dedent(handler_body), "    ")
    (directory / "app.py").write_text(source)
    return directory


@pytest.fixture
def sample_event(tmp_path: Path) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"version": "2.0", "rawPath": "/predict"}))
    return path


@pytest.mark.parametrize("status", [500, 502, 503])
def test_the_smoke_test_fails_a_package_that_answers_a_server_error(
    status: int, tmp_path: Path, sample_event: Path
) -> None:
    broken = fake_package(tmp_path / "package", f"return {{'statusCode': {status}, 'body': ''}}")

    with pytest.raises(SmokeTestError, match=rf"server errors: {{'event.json': {status}}}"):
        trace_cold_path(broken, [sample_event])


def test_the_smoke_test_fails_a_package_that_cannot_answer(tmp_path: Path, sample_event: Path) -> None:
    broken = fake_package(tmp_path / "package", "raise RuntimeError('model missing')")

    with pytest.raises(SmokeTestError, match=r"failed to start or answer:(.|\n)*RuntimeError: model missing"):
        trace_cold_path(broken, [sample_event])


@pytest.mark.parametrize("status", [200, 400, 404, 413, 499])
def test_the_smoke_test_passes_a_package_that_answers_without_a_server_error(
    status: int, tmp_path: Path, sample_event: Path
) -> None:
    working = fake_package(tmp_path / "package", f"return {{'statusCode': {status}, 'body': ''}}")

    traced = trace_cold_path(working, [sample_event])

    assert traced.statuses == {"event.json": status}
    assert working / "app.py" in traced.modules


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


def size_report(unzipped_bytes: int) -> SizeReport:
    return SizeReport(unzipped_bytes=unzipped_bytes, zipped_bytes=1, files=1, by_top_level=[("numpy", unzipped_bytes)])


def test_the_size_limit_is_lambdas_quota_to_the_byte() -> None:
    size_report(LAMBDA_UNZIPPED_QUOTA).check_limit()

    with pytest.raises(PackageTooLargeError, match=r"262\.1 MB unzipped, over Lambda's 262\.1 MB limit"):
        size_report(LAMBDA_UNZIPPED_QUOTA + 1).check_limit()
