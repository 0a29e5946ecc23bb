"""Measuring built packages: cold start, warm requests, peak RSS, imports, and batch compute.

Every start runs bench/probe.py in a fresh `python3.12 -I -S -B` process with only the
package on its import path:

- cold start: spawn to the first /predict response through the real handler and a real
  HTTP API event, median over the rounds;
- warm latency: median and p99 of the further handler invocations in those processes;
- peak RSS: the process's VmHWM, median over the rounds;
- where a cold start goes: `-X importtime` self time by module group and top-level package.

Batch compute runs in this process: the package's engine against the estimator's own
`predict`, on rows resampled from the model's own data.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from numpy.typing import NDArray

from bench.packages import BENCH_DIR
from build import sizes
from build.package import EVENTS_DIR
from build.sizes import SizeReport
from build.spec import load_spec
from build.train import check_rows
from local.lambda_local import ISOLATED_PYTHON_FLAGS
from serving.config import PACKAGE_MODEL_DIR

PROBE = BENCH_DIR / "probe.py"
SEED_EVENT = EVENTS_DIR / "http-api-predict.json"
CLEAN_PYTHON = [sys.executable, *ISOLATED_PYTHON_FLAGS]
PROBE_TIMEOUT_S = 300
MIB = 1024 * 1024
BATCH_SIZES = (1, 100, 10_000)
OBSERVABILITY_PACKAGES = ("aws_lambda_powertools", "jmespath", "aws_xray_sdk", "wrapt")
IMPORT_RUNS = 3
# What a cold start's imports are spent on: each group's top-level packages. The standard library
# is its own group (sys.stdlib_module_names); anything else is "other".
IMPORT_GROUPS = {
    "the function (app, serving)": ("app", "batch", "serving"),
    "web framework (FastAPI, Starlette, Pydantic, Mangum)": (
        *("fastapi", "starlette", "pydantic", "pydantic_core", "annotated_types", "annotated_doc"),
        *("typing_inspection", "typing_extensions", "anyio", "idna", "sniffio", "mangum", "opentelemetry"),
    ),
    "numpy": ("numpy",),
    "scikit-learn engine (scikit-learn, SciPy, joblib)": ("sklearn", "scipy", "joblib", "threadpoolctl", "narwhals"),
    "observability (Powertools, jmespath, X-Ray)": OBSERVABILITY_PACKAGES,
    "bench harness (local/lambda_runtime.py)": ("lambda_runtime",),
}
STANDARD_LIBRARY, OTHER = "standard library", "other"

Predict = Callable[[NDArray[Any]], NDArray[Any]]


class ProbeError(Exception):
    """A package failed to start or to answer its request."""


class EngineLoadError(Exception):
    """A package's engine cannot be loaded in this process."""


@dataclass
class Variant:
    """One package started with one environment and one request, and what was measured of it."""

    name: str
    package: Path
    event: Path = SEED_EVENT
    environment: dict[str, str] = field(default_factory=dict)
    cold_s: list[float] = field(default_factory=list)
    warm_ms: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    first_response: str = ""
    size: SizeReport | None = None
    error: str | None = None


def import_group(package: str) -> str:
    """The module group (IMPORT_GROUPS) of a top-level package."""
    group = next((group for group, members in IMPORT_GROUPS.items() if package in members), None)
    return group or (STANDARD_LIBRARY if package in sys.stdlib_module_names else OTHER)


@dataclass(frozen=True)
class ImportBreakdown:
    """A cold start's import self time (ms) by top-level package (`-X importtime`, the median of
    IMPORT_RUNS cold starts for each package)."""

    by_package: dict[str, float]

    @property
    def total_ms(self) -> float:
        return sum(self.by_package.values())

    def by_group(self) -> list[tuple[str, float, list[tuple[str, float]]]]:
        """Each module group's time and its packages' times, largest first."""
        members: dict[str, list[tuple[str, float]]] = {}
        for package, ms in sorted(self.by_package.items(), key=lambda item: -item[1]):
            members.setdefault(import_group(package), []).append((package, ms))
        groups = [(group, sum(ms for _, ms in packages), packages) for group, packages in members.items()]
        return sorted(groups, key=lambda group: -group[1])


@dataclass(frozen=True)
class BatchTiming:
    """The engine and the estimator's own `predict` on one batch (best of two medians each), or
    why they were not timed."""

    rows: int
    engine_s: float = math.nan
    estimator_s: float = math.nan
    error: str | None = None


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (`fraction` in [0, 1])."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure_once(variant: Variant, warm: int) -> None:
    """One cold start of `variant` and `warm` further requests, appended to its figures."""
    read_end, write_end = os.pipe()
    started = time.perf_counter()
    probe = subprocess.Popen(
        [*CLEAN_PYTHON, str(PROBE), str(variant.package), str(variant.event), str(warm), str(write_end)],
        env={**os.environ, **variant.environment},
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(write_end)
    with os.fdopen(read_end) as report:
        first = report.readline()
        cold = time.perf_counter() - started
        stats = report.readline()
    _, stderr = probe.communicate(timeout=PROBE_TIMEOUT_S)
    if probe.returncode != 0 or not first.startswith("first ") or not stats:
        last_line = (stderr.decode().strip().splitlines() or ["no output"])[-1]
        raise ProbeError(f"{variant.name} failed to start or answer: {last_line}")
    measured = json.loads(stats)
    variant.first_response = first.removeprefix("first ").strip()
    variant.cold_s.append(cold)
    variant.warm_ms += [ns / 1e6 for ns in measured["warm_ns"]]
    variant.rss_mib.append(measured["peak_rss_kib"] * 1024 / MIB)


def measure_size(variant: Variant) -> None:
    """The package's size, unzipped and zipped."""
    variant.size = sizes.measure(variant.package)


def measure_interleaved(variants: Sequence[Variant], rounds: int, warm: int) -> None:
    """`rounds` cold starts of every variant, alternating the order so drift affects all alike.
    A variant that fails records why and is not started again."""
    for round_number in range(rounds):
        order = list(variants) if round_number % 2 == 0 else list(variants)[::-1]
        for variant in order:
            if variant.error is None:
                try:
                    measure_once(variant, warm)
                except ProbeError as error:
                    variant.error = str(error)


def import_breakdown(package: Path, event: Path = SEED_EVENT) -> ImportBreakdown:
    """Where cold starts of `package` (through the first response) spend their import time."""
    runs: list[Counter[str]] = []
    for _ in range(IMPORT_RUNS):
        read_end, write_end = os.pipe()
        result = subprocess.run(
            [*CLEAN_PYTHON, "-X", "importtime", str(PROBE), str(package), str(event), "0", str(write_end)],
            pass_fds=(write_end,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
        )
        os.close(write_end)
        os.close(read_end)
        self_us: Counter[str] = Counter()
        for match in re.finditer(r"import time:\s+(\d+) \|\s+\d+ \|\s+(\S+)", result.stderr):
            self_us[match[2].split(".")[0]] += int(match[1])
        runs.append(self_us)
    packages = set().union(*runs)
    return ImportBreakdown({name: statistics.median(run[name] for run in runs) / 1000 for name in packages})


def json_feature(value: Any) -> float | str | None:
    """A feature value as the API takes it: a category string, a number, or null for missing (NaN)."""
    if isinstance(value, str):
        return value
    number = float(value)
    return None if math.isnan(number) else number


def request_event(template: dict[str, Any], row: Sequence[Any]) -> dict[str, Any]:
    """`template` (an HTTP API /predict event) asking for the prediction of `row`."""
    body = json.dumps({"features": [json_feature(value) for value in row]}, allow_nan=False)
    headers = {**template["headers"], "content-length": str(len(body.encode()))}
    return {**template, "headers": headers, "body": body, "isBase64Encoded": False}


def model_rows(spec_path: Path) -> NDArray[Any]:
    """The spec's check rows, held-out rows first: the model's own data, as the estimator takes it."""
    rows = check_rows(load_spec(spec_path))
    return np.concatenate([rows.held_out, rows.train]) if len(rows.train) else rows.held_out


def resample(rows: NDArray[Any], size: int, rng: np.random.Generator) -> NDArray[Any]:
    """`size` rows drawn with replacement from `rows`, keeping their dtype."""
    return rows[rng.integers(0, len(rows), size=size)]


def load_engine(package: Path) -> Predict:
    """The `predict` of the engine `package` serves, loaded in this process as the function
    loads it at cold start. (Kept to this one function: the model loader's API is changing.)"""
    from serving.errors import ModelLoadError
    from serving.model import load_model

    try:
        engine = load_model(package / PACKAGE_MODEL_DIR).engine
    except ModelLoadError as error:
        raise EngineLoadError(f"the engine of {package} cannot be loaded: {error}") from error
    return engine.predict


def load_estimator(path: Path) -> Predict:
    """The `predict` of the pickled estimator at `path`."""
    predict: Predict = joblib.load(path).predict
    return predict


def median_seconds(call: Callable[[], Any], budget_s: float = 1.0, max_repeats: int = 300) -> float:
    """The median duration of `call`, repeated at least 5 times and for about `budget_s`."""
    timings: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(timings) < 5 or (time.perf_counter() < deadline and len(timings) < max_repeats):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def time_batches(engine: Predict, estimator: Predict, rows: NDArray[Any], seed: int = 0) -> list[BatchTiming]:
    """`engine` against `estimator`, interleaved, on batches of each of BATCH_SIZES rows drawn
    from `rows`; a batch on which their answers differ is reported, not timed."""
    rng = np.random.default_rng(seed)
    timings = []
    for size in BATCH_SIZES:
        batch = resample(rows, size, rng)
        differing = int(np.count_nonzero(np.asarray(engine(batch)) != np.asarray(estimator(batch))))
        if differing:
            timings.append(BatchTiming(size, error=f"answers differ from scikit-learn's on {differing} rows"))
            continue
        engine_s, estimator_s = [], []
        for _ in range(2):
            engine_s.append(median_seconds(partial(engine, batch)))
            estimator_s.append(median_seconds(partial(estimator, batch)))
        timings.append(BatchTiming(size, min(engine_s), min(estimator_s)))
    return timings
