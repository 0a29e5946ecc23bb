"""Side-by-side benchmark of this project's Lambda package against the naive tutorial build.

Both packages are built (or reused) in the same run, then measured interleaved, each
start in a fresh `python3.12 -I -S -B` process with only the package on its import path:

- cold start: spawn to the first /predict response through the real handler and a real
  HTTP API event (events/http-api-predict.json), median over the rounds;
- warm latency: median and p99 of the further handler invocations in those processes;
- peak RSS (median over the rounds), package size unzipped and zipped;
- where this project's cold start goes: `-X importtime` self time by top-level package.

The table is printed and written to bench/RESULTS.md. Figures are for reading: this
machine is shared and noisy, so compare the ratios measured within one run.

    python -m bench.run [--rounds 7] [--warm 300]      (or: make bench)
"""

from __future__ import annotations

import argparse
import hashlib
import json
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
from pathlib import Path

from build import sizes
from build.package import MODEL_CACHE_DIR, PROJECT_ROOT
from build.train import MODEL_FILE, train_if_needed

BENCH_DIR = PROJECT_ROOT / "bench"
PROBE = BENCH_DIR / "probe.py"
EVENT = PROJECT_ROOT / "events" / "http-api-predict.json"
RESULTS = BENCH_DIR / "RESULTS.md"
PROJECT_PACKAGE = PROJECT_ROOT / ".aws-sam" / "build" / "PredictFunction"
BASELINE_DIR = BENCH_DIR / "baseline"
BASELINE_BUILD = BENCH_DIR / ".build" / "baseline"
BASELINE_PACKAGE = BASELINE_BUILD / "BaselineFunction"
CLEAN_PYTHON = [sys.executable, "-I", "-S", "-B"]
MIB = 1024 * 1024


@dataclass(frozen=True)
class Target:
    """A goal for one row: at most `limit`, as a ratio to the baseline or as an absolute figure."""

    limit: float
    ratio: bool = True

    def met(self, value: float, baseline: float) -> bool:
        return (value / baseline if self.ratio else value) <= self.limit

    def describe(self) -> str:
        return f"≤ {self.limit:.2f}x" if self.ratio else f"≤ {self.limit:g}"


@dataclass
class Variant:
    name: str
    package: Path
    cold_s: list[float] = field(default_factory=list)
    warm_ms: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    first_response: str = ""


def run(command: list[str], **env: str) -> None:
    print(f"$ {' '.join(command)}", flush=True)  # noqa: T201 - a command-line tool reporting progress
    subprocess.run(command, check=True, cwd=PROJECT_ROOT, env={**os.environ, **env})


def ensure_project_package(rebuild: bool) -> None:
    if rebuild or not (PROJECT_PACKAGE / "app.py").is_file():
        run(["sam", "build"])


def ensure_baseline_package() -> None:
    """Build the tutorial function with SAM's default Python builder, then add the same model file."""
    model = train_if_needed(MODEL_CACHE_DIR)
    inputs = [BASELINE_DIR / "template.yaml", *sorted((BASELINE_DIR / "function").iterdir())]
    key = hashlib.sha256(b"".join(path.read_bytes() for path in inputs if path.is_file())).hexdigest()
    key += model.manifest["sha256"]
    stamp = BASELINE_BUILD / "inputs.sha256"
    if stamp.is_file() and stamp.read_text() == key and (BASELINE_PACKAGE / "app.py").is_file():
        return
    run(
        ["sam", "build", "--template-file", str(BASELINE_DIR / "template.yaml"), "--build-dir", str(BASELINE_BUILD)],
        SAM_CLI_TELEMETRY="0",
    )
    shutil.copy2(model.model_path, BASELINE_PACKAGE / MODEL_FILE)
    stamp.write_text(key)


def measure_once(variant: Variant, warm: int) -> None:
    read_end, write_end = os.pipe()
    started = time.perf_counter()
    probe = subprocess.Popen(
        [*CLEAN_PYTHON, str(PROBE), str(variant.package), str(EVENT), str(warm), str(write_end)],
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


def import_breakdown(package: Path) -> tuple[float, list[tuple[str, float]]]:
    """Total import time of a cold start and its self time grouped by top-level package (ms)."""
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
    return sum(self_us.values()) / 1000, [(name, us / 1000) for name, us in self_us.most_common(12)]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def render(variants: list[Variant], targets: dict[str, Target], rounds: int, warm: int, breakdown: str) -> str:
    baseline, *others = variants
    size = {v.name: sizes.measure(v.package) for v in variants}
    rows: list[tuple[str, Callable[[Variant], float], str]] = [
        ("cold start, median (s)", lambda v: statistics.median(v.cold_s), "{:.3f}"),
        ("warm request, median (ms)", lambda v: statistics.median(v.warm_ms), "{:.3f}"),
        ("warm request, p99 (ms)", lambda v: percentile(v.warm_ms, 0.99), "{:.3f}"),
        ("peak RSS, median (MiB)", lambda v: statistics.median(v.rss_mib), "{:.0f}"),
        ("package unzipped (MB)", lambda v: size[v.name].unzipped_bytes / 1e6, "{:.1f}"),
        ("package zipped (MB)", lambda v: size[v.name].zipped_bytes / 1e6, "{:.1f}"),
    ]
    header = ["", *(v.name for v in variants), *(f"{v.name} / {baseline.name}" for v in others), "target"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, value, fmt in rows:
        cells = [fmt.format(value(v)) for v in variants]
        ratios = [f"{value(v) / value(baseline):.2f}x" for v in others]
        target = targets.get(label)
        verdict = ""
        if target:
            met = all(target.met(value(v), value(baseline)) for v in others)
            verdict = f"{target.describe()} {'met' if met else 'MISSED'}"
        lines.append("| " + " | ".join([label, *cells, *ratios, verdict]) + " |")
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
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
            *lines,
            "",
            breakdown,
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="cold starts per package")
    parser.add_argument("--warm", type=int, default=300, help="warm invocations after each cold start")
    parser.add_argument("--rebuild", action="store_true", help="run sam build even if a package exists")
    args = parser.parse_args()
    ensure_project_package(args.rebuild)
    ensure_baseline_package()
    variants = [Variant("baseline", BASELINE_PACKAGE), Variant("project", PROJECT_PACKAGE)]
    targets = {
        "cold start, median (s)": Target(0.40),
        "warm request, median (ms)": Target(0.25),
        "package unzipped (MB)": Target(180, ratio=False),
    }
    for round_number in range(args.rounds):
        order = variants if round_number % 2 == 0 else variants[::-1]
        for variant in order:
            measure_once(variant, args.warm)
    total_ms, top = import_breakdown(PROJECT_PACKAGE)
    breakdown = "\n".join(
        [
            f"Where the project's cold start goes: {total_ms:.0f} ms of imports (`-X importtime`, one run), "
            "self time by top-level package:",
            "",
            "| package | ms |",
            "|---|---|",
            *(f"| {name} | {ms:.0f} |" for name, ms in top),
        ]
    )
    report = render(variants, targets, args.rounds, args.warm, breakdown)
    RESULTS.write_text(report)
    print(report)  # noqa: T201 - the benchmark's output


if __name__ == "__main__":
    main()
