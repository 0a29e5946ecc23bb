"""Side-by-side benchmark: this project's package (compiled forest), the same project with the
scikit-learn runtime, and the naive tutorial build.

All packages are built (or reused) in the same run, then measured interleaved, each start in
a fresh `python3.12 -I -S -B` process with only the package on its import path:

- cold start: spawn to the first /predict response through the real handler and a real
  HTTP API event (events/http-api-predict.json), median over the rounds;
- warm latency: median and p99 of the further handler invocations in those processes;
- peak RSS (median over the rounds), package size unzipped and zipped;
- batch compute: the compiled forest against scikit-learn's own `predict` on 1, 100 and
  10,000 rows, in this process;
- where the project's cold start goes: `-X importtime` self time by top-level package.

The tables are printed and written to bench/RESULTS.md. Figures are for reading: this
machine is shared and noisy, so compare the ratios measured within one run.

    python -m bench.run [--rounds 7] [--warm 300]      (or: make bench)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from build import FUNCTION_DIR, PROJECT_ROOT, sizes
from build.package import MODEL_CACHE_DIR, pinned_versions
from build.slim import RUNTIME_PROVIDED
from build.train import MODEL_FILE, train_if_needed
from serving.compiled_forest import CompiledForest

BENCH_DIR = PROJECT_ROOT / "bench"
BUILD_DIR = BENCH_DIR / ".build"
PROBE = BENCH_DIR / "probe.py"
EVENT = PROJECT_ROOT / "events" / "http-api-predict.json"
RESULTS = BENCH_DIR / "RESULTS.md"
PROJECT_PACKAGE = PROJECT_ROOT / ".aws-sam" / "build" / "PredictFunction"
SKLEARN_RUNTIME_PACKAGE = BUILD_DIR / "sklearn-runtime" / "PredictFunction"
BASELINE_DIR = BENCH_DIR / "baseline"
BASELINE_PACKAGE = BUILD_DIR / "baseline" / "BaselineFunction"
CLEAN_PYTHON = [sys.executable, "-I", "-S", "-B"]
BATCH_SIZES = (1, 100, 10_000)
MIB = 1024 * 1024
RUNTIME_PROVIDED_DIR = BUILD_DIR / "lambda-runtime-provided"
BASELINE, SKLEARN_RUNTIME, PROJECT = "baseline", "scikit-learn runtime", "compiled (project)"
PROJECT_TRACED = "compiled, tracing on"
TRACING_ENVIRONMENT = {
    "POWERTOOLS_TRACE_DISABLED": "false",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "LAMBDA_LOCAL_RUNTIME_PATH": str(RUNTIME_PROVIDED_DIR),
}
# Lambda's published prices (us-east-1): per request, and per GB-second of duration.
PRICE_PER_REQUEST = 0.20 / 1e6
PRICE_PER_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
FULL_VCPU_MB = 1769
MEMORY_SIZES_MB = (128, 256, 512, 1024, 1769, 3008)


@dataclass(frozen=True)
class Target:
    """At most `limit`: a ratio to the variant `against`, or an absolute figure when it is None."""

    limit: float
    against: str | None = None

    def met(self, value: float, reference: float | None) -> bool:
        return (value / reference if reference is not None else value) <= self.limit

    def describe(self) -> str:
        return f"≤ {self.limit:.2f}x {self.against}" if self.against else f"≤ {self.limit:g}"


@dataclass
class Variant:
    name: str
    package: Path
    targets: dict[str, list[Target]] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    cold_s: list[float] = field(default_factory=list)
    warm_ms: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    first_response: str = ""


def run(command: list[str]) -> None:
    print(f"$ {' '.join(command)}", flush=True)  # noqa: T201 - a command-line tool reporting progress
    subprocess.run(command, check=True, cwd=PROJECT_ROOT, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})


def inputs_key(*roots: Path) -> str:
    """A hash of every file under `roots`, to rebuild a package only when its inputs changed."""
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*") if root.is_dir() else [root]):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + path.read_bytes())
    return digest.hexdigest()


def build_if_changed(package: Path, key: str, build: Callable[[], None]) -> None:
    stamp = package.parent / "inputs.sha256"
    if stamp.is_file() and stamp.read_text() == key and (package / "app.py").is_file():
        return
    build()
    stamp.write_text(key)


def ensure_runtime_provided() -> None:
    """botocore and its helpers, which the Lambda runtime provides and the package leaves out:
    the tracing variant imports them, as it would from /var/runtime."""
    if RUNTIME_PROVIDED_DIR.is_dir():
        return
    pins = pinned_versions(FUNCTION_DIR / "requirements.txt")
    specs = [f"{name}=={version}" for name, version in pins.items() if name in RUNTIME_PROVIDED]
    run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(RUNTIME_PROVIDED_DIR), *specs])


def ensure_packages(rebuild: bool) -> None:
    if rebuild or not (PROJECT_PACKAGE / "app.py").is_file():
        run(["sam", "build"])
    model = train_if_needed(MODEL_CACHE_DIR)

    def build_baseline() -> None:
        template = BASELINE_DIR / "template.yaml"
        run(["sam", "build", "--template-file", str(template), "--build-dir", str(BASELINE_PACKAGE.parent)])
        shutil.copy2(model.model_path, BASELINE_PACKAGE / MODEL_FILE)

    def build_sklearn_runtime() -> None:
        run([sys.executable, "-m", "build.package", "--out", str(SKLEARN_RUNTIME_PACKAGE), "--runtime", "scikit-learn"])

    model_key = model.manifest["sha256"]
    build_if_changed(BASELINE_PACKAGE, inputs_key(BASELINE_DIR) + model_key, build_baseline)
    ensure_runtime_provided()
    build_if_changed(
        SKLEARN_RUNTIME_PACKAGE,
        inputs_key(FUNCTION_DIR, PROJECT_ROOT / "build", PROJECT_ROOT / "events") + model_key,
        build_sklearn_runtime,
    )


def measure_once(variant: Variant, warm: int) -> None:
    read_end, write_end = os.pipe()
    started = time.perf_counter()
    probe = subprocess.Popen(
        [*CLEAN_PYTHON, str(PROBE), str(variant.package), str(EVENT), str(warm), str(write_end)],
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
    _, stderr = probe.communicate(timeout=300)
    if probe.returncode != 0 or not first.startswith("first "):
        raise SystemExit(f"{variant.name} failed:\n{stderr.decode()}")
    measured = json.loads(stats)
    variant.first_response = first.removeprefix("first ").strip()
    variant.cold_s.append(cold)
    variant.warm_ms += [ns / 1e6 for ns in measured["warm_ns"]]
    variant.rss_mib.append(measured["peak_rss_kib"] * 1024 / MIB)


OBSERVABILITY_PACKAGES = ("aws_lambda_powertools", "jmespath", "aws_xray_sdk", "wrapt")


def import_breakdown(package: Path) -> tuple[float, list[tuple[str, float]], float]:
    """A cold start's import time (ms): the total, the self time of the top-level packages
    taking most, and the self time of the observability libraries."""
    read_end, write_end = os.pipe()
    result = subprocess.run(
        [*CLEAN_PYTHON, "-X", "importtime", str(PROBE), str(package), str(EVENT), "0", str(write_end)],
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
    observability_ms = sum(self_us[name] for name in OBSERVABILITY_PACKAGES) / 1000
    return sum(self_us.values()) / 1000, [(name, us / 1000) for name, us in self_us.most_common(10)], observability_ms


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def median_seconds(call: Callable[[], Any], budget_s: float = 1.0, max_repeats: int = 300) -> float:
    timings: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(timings) < 5 or (time.perf_counter() < deadline and len(timings) < max_repeats):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def batch_sweep() -> list[str]:
    """The compiled forest against scikit-learn's own predict, interleaved, on growing batches."""
    estimator = joblib.load(MODEL_CACHE_DIR / MODEL_FILE)
    compiled = CompiledForest.load(PROJECT_PACKAGE / "model" / "forest.npz")
    rng = np.random.default_rng(0)
    lines = [
        "| rows | compiled forest (ms) | scikit-learn predict (ms) | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for size in BATCH_SIZES:
        rows = rng.normal([5.8, 3.0, 3.8, 1.2], [0.8, 0.4, 1.8, 0.8], size=(size, compiled.n_features))
        if compiled.predict(rows).tobytes() != estimator.predict(rows).tobytes():
            raise SystemExit(f"compiled and scikit-learn predictions differ on {size} rows")
        compiled_s, sklearn_s = [], []
        for _ in range(2):
            compiled_s.append(median_seconds(partial(compiled.predict, rows)))
            sklearn_s.append(median_seconds(partial(estimator.predict, rows)))
        best_compiled, best_sklearn = min(compiled_s), min(sklearn_s)
        ratio = best_compiled / best_sklearn
        verdict = "met" if ratio <= 1.0 else "MISSED"
        lines.append(
            f"| {size:,} | {best_compiled * 1e3:.3f} | {best_sklearn * 1e3:.3f} | {ratio:.2f}x | ≤ 1.00x {verdict} |"
        )
    return lines


ROWS: list[tuple[str, Callable[[Variant, dict[str, sizes.SizeReport]], float], str]] = [
    ("cold start, median (s)", lambda v, s: statistics.median(v.cold_s), "{:.3f}"),
    ("warm request, median (ms)", lambda v, s: statistics.median(v.warm_ms), "{:.3f}"),
    ("warm request, p99 (ms)", lambda v, s: percentile(v.warm_ms, 0.99), "{:.3f}"),
    ("peak RSS, median (MiB)", lambda v, s: statistics.median(v.rss_mib), "{:.0f}"),
    ("package unzipped (MB)", lambda v, s: s[v.name].unzipped_bytes / 1e6, "{:.1f}"),
    ("package zipped (MB)", lambda v, s: s[v.name].zipped_bytes / 1e6, "{:.1f}"),
]


def verdicts(variant: Variant, label: str, values: dict[str, float]) -> list[str]:
    said = []
    for target in variant.targets.get(label, []):
        reference = values[target.against] if target.against else None
        met = target.met(values[variant.name], reference)
        said.append(f"{variant.name} {target.describe()} {'met' if met else 'MISSED'}")
    return said


def main_table(variants: list[Variant]) -> list[str]:
    size = {v.name: sizes.measure(v.package) for v in variants}
    ratio_pairs = [
        (PROJECT, BASELINE),
        (PROJECT, SKLEARN_RUNTIME),
        (SKLEARN_RUNTIME, BASELINE),
        (PROJECT_TRACED, PROJECT),
    ]
    header = ["", *(v.name for v in variants), *(f"{a} / {b}" for a, b in ratio_pairs), "targets"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, measure, fmt in ROWS:
        values = {v.name: measure(v, size) for v in variants}
        ratios = [f"{values[a] / values[b]:.2f}x" for a, b in ratio_pairs]
        said = [verdict for variant in variants for verdict in verdicts(variant, label, values)]
        cells = [fmt.format(values[v.name]) for v in variants]
        lines.append("| " + " | ".join([label, *cells, *ratios, "; ".join(said)]) + " |")
    return lines


def cost_table(project: Variant) -> list[str]:
    """Estimated warm duration, cold start and price per million predictions by memory size.

    Lambda gives a function CPU in proportion to its memory (one full vCPU at 1,769 MB), so
    single-threaded times measured here on one core scale by 1769 / memory below that; each
    invocation is billed per started millisecond.
    """
    warm_ms = statistics.median(project.warm_ms)
    cold_s = statistics.median(project.cold_s)
    lines = [
        "| memory (MB) | warm request (ms, billed) | cold start (s) | $ per million, x86_64 | $ per million, arm64 |",
        "|---|---|---|---|---|",
    ]
    for memory in MEMORY_SIZES_MB:
        slowdown = max(1.0, FULL_VCPU_MB / memory)
        billed_ms = math.ceil(warm_ms * slowdown)
        gb_seconds = billed_ms / 1000 * memory / 1024
        prices = [1e6 * (PRICE_PER_REQUEST + gb_seconds * PRICE_PER_GB_SECOND[arch]) for arch in ("x86_64", "arm64")]
        lines.append(
            f"| {memory:,} | {warm_ms * slowdown:.2f} ({billed_ms}) | {cold_s * slowdown:.2f} | "
            f"{prices[0]:.4f} | {prices[1]:.4f} |"
        )
    return lines


def render(variants: list[Variant], rounds: int, warm: int, batches: list[str], breakdown: list[str]) -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())
    answers = ", ".join(f"{v.name} `{v.first_response}`" for v in variants)
    return "\n".join(
        [
            "# Benchmark results",
            "",
            f"`python -m bench.run --rounds {rounds} --warm {warm}` on {time.strftime('%Y-%m-%d')}: "
            f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}. "
            f"{rounds} interleaved cold starts per package, {warm} warm requests after each. "
            f"First responses: {answers}.",
            "",
            *main_table(variants),
            "",
            "Batch compute (in process, best of two medians each):",
            "",
            *batches,
            "",
            "Memory and cost, estimated from the compiled package's figures above (Lambda's CPU share "
            "grows with memory up to one vCPU at 1,769 MB; published prices: $0.20 per million requests, "
            "$0.0000166667 (x86_64) or $0.0000133334 (arm64) per GB-second):",
            "",
            *cost_table(next(v for v in variants if v.name == PROJECT)),
            "",
            *breakdown,
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="cold starts per package")
    parser.add_argument("--warm", type=int, default=300, help="warm invocations after each cold start")
    parser.add_argument("--rebuild", action="store_true", help="run sam build even if a package exists")
    args = parser.parse_args()
    ensure_packages(args.rebuild)
    variants = [
        Variant(BASELINE, BASELINE_PACKAGE),
        Variant(
            SKLEARN_RUNTIME,
            SKLEARN_RUNTIME_PACKAGE,
            targets={
                "cold start, median (s)": [Target(0.40, BASELINE)],
                "warm request, median (ms)": [Target(0.25, BASELINE)],
                "package unzipped (MB)": [Target(180)],
            },
        ),
        Variant(
            PROJECT,
            PROJECT_PACKAGE,
            targets={
                "cold start, median (s)": [Target(0.35, SKLEARN_RUNTIME), Target(0.12, BASELINE)],
                "warm request, median (ms)": [Target(0.06, BASELINE)],
                "peak RSS, median (MiB)": [Target(70)],
                "package unzipped (MB)": [Target(80)],
            },
        ),
        # What turning tracing on costs (reported, not a target: off is the default).
        Variant(PROJECT_TRACED, PROJECT_PACKAGE, environment=TRACING_ENVIRONMENT),
    ]
    for round_number in range(args.rounds):
        order = variants if round_number % 2 == 0 else variants[::-1]
        for variant in order:
            measure_once(variant, args.warm)
    batches = batch_sweep()
    breakdown_lines = []
    for variant in variants[1:3]:
        total_ms, top, observability_ms = import_breakdown(variant.package)
        breakdown_lines += [
            f"Where the {variant.name} package's cold start goes: {total_ms:.0f} ms of imports "
            f"(`-X importtime`, one run), of which {observability_ms:.0f} ms ({observability_ms / total_ms:.0%}) "
            "are the observability libraries (Powertools, jmespath); self time by top-level package:",
            "",
            "| package | ms |",
            "|---|---|",
            *(f"| {name} | {ms:.0f} |" for name, ms in top),
            "",
        ]
    report = render(variants, args.rounds, args.warm, batches, breakdown_lines)
    RESULTS.write_text(report)
    print(report)  # noqa: T201 - the benchmark's output


if __name__ == "__main__":
    main()
