"""Scoring a file: `make score`'s script (local/score.py) on the built package against
scikit-learn's own `predict` looped over the same CSV (bench/score_baseline.py), each in a
process of its own, interleaved, for each file size; then the Distributed Map job's estimate.

The CSVs are generated (Iris rows resampled with a fixed seed, an `id` column first) under
bench/.build/scoring/. Wall time is spawn to exit; peak RSS is the child's own (wait4's
ru_maxrss). Both outputs must be the same file (ids and labels), or the run fails. The tables
go into docs/scoring.md (`bench:start scoring`) and README.md (`bench:start scoring-estimate`); the
machine is shared and noisy, so compare the ratios measured within one run.

    python -m bench.scoring [--rows 100000 1000000] [--rounds 3] [--no-write]   (or: make bench-scoring)
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from samtranslator.yaml_helper import yaml_parse
from sklearn.datasets import load_iris

from bench import report
from bench.packages import BENCH_DIR, BUILD_DIR
from build import DEFAULT_SPEC, PROJECT_ROOT
from build.spec import load_spec
from build.train import model_cache_dir, train_if_needed
from local.lambda_local import DEFAULT_PACKAGE

SCORE = PROJECT_ROOT / "local" / "score.py"
BASELINE = BENCH_DIR / "score_baseline.py"
DATA_DIR = BUILD_DIR / "scoring"
SEED = 10
ROW_COUNTS = (100_000, 1_000_000)
MIB = 1024  # KiB per MiB: /proc reports KiB
RSS_POLL_S = 0.02
# The targets: rows per second end to end, against the scikit-learn loop, and flat memory.
TARGET_ROWS_PER_S = 100_000
TARGET_RATIO = 1.0
RSS_TOLERANCE = 0.10
# The BatchScoring job as template.yaml deploys it by default: its parameters and its scoring
# function's memory are read from there (batch_job_defaults), so the estimate follows the template.
TEMPLATE = PROJECT_ROOT / "template.yaml"
# Step Functions prices (us-east-1): the parent (standard) workflow pays one state transition per
# child execution the Distributed Map starts; the children are EXPRESS (ProcessorConfig), billed per
# request and per GB-second at their 64 MB minimum.
PRICE_PER_TRANSITION = 0.025 / 1000
PRICE_PER_EXPRESS_REQUEST = 1.00 / 1e6
PRICE_PER_EXPRESS_GB_SECOND = 0.00001667
EXPRESS_MEMORY_GB = 64 / 1024
ARCHITECTURE = "arm64"
SECTION = "scoring"
ESTIMATE_SECTION = "scoring-estimate"
PROJECT, SCIKIT_LEARN = "make score (compiled engine, validated)", "scikit-learn predict loop (no validation)"


class BenchError(Exception):
    """A run failed or the two outputs disagree."""


@dataclass
class Runs:
    """One program on one file, per round: wall seconds, CPU seconds (user + system) and peak RSS (MiB)."""

    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)

    def rate(self, rows: int) -> float:
        return rows / statistics.median(self.seconds)

    def cpu_rate(self, rows: int) -> float:
        return rows / statistics.median(self.cpu_seconds)

    def rss(self) -> float:
        return statistics.median(self.rss_mib)


def generate(rows: int) -> Path:
    """A CSV of `rows` Iris rows resampled with a fixed seed, with an id column; made once."""
    path = DATA_DIR / f"iris-{rows}.csv"
    if path.is_file():
        return path
    iris = load_iris()
    drawn = np.random.default_rng(SEED).integers(0, len(iris.data), size=rows)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", *feature_names()])
        writer.writerows([f"r{index}", *iris.data[row].tolist()] for index, row in enumerate(drawn.tolist()))
    partial.replace(path)
    return path


def feature_names() -> list[str]:
    return [feature.name for feature in load_spec(DEFAULT_SPEC).features]


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set so far (VmHWM: its own, reset at exec), 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    kib = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), "0")
    return int(kib) / MIB


def run_child(command: list[str], runs: Runs) -> None:
    """Run `command` to its end; append its wall time, CPU time and peak RSS to `runs`. The peak is
    read from /proc while it runs: getrusage's figure for a child starts at its parent's size."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        peak = 0.0
        while True:
            peak = max(peak, peak_rss_mib(child.pid))
            reaped, status, usage = os.wait4(child.pid, os.WNOHANG)
            if reaped:
                break
            time.sleep(RSS_POLL_S)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            errors.seek(0)
            raise BenchError(f"{' '.join(command[:3])} failed ({child.returncode}): {errors.read()[-500:].decode()}")
    runs.seconds.append(elapsed)
    runs.cpu_seconds.append(usage.ru_utime + usage.ru_stime)
    runs.rss_mib.append(peak)


def measure(row_counts: list[int], rounds: int, package: Path) -> dict[tuple[str, int], Runs]:
    """Both programs on each file, interleaved round by round; their outputs compared each time."""
    estimator = train_if_needed(model_cache_dir(load_spec(DEFAULT_SPEC))).model_path
    files = {rows: generate(rows) for rows in row_counts}
    results = {(name, rows): Runs() for name in (PROJECT, SCIKIT_LEARN) for rows in row_counts}
    with tempfile.TemporaryDirectory() as scratch:
        ours, theirs = Path(scratch) / "project.csv", Path(scratch) / "baseline.csv"
        for _ in range(rounds):
            for rows, source in files.items():
                project = [sys.executable, str(SCORE), "--package", str(package), str(source), str(ours)]
                run_child(project, results[PROJECT, rows])
                baseline = [sys.executable, str(BASELINE), str(estimator), str(source), str(theirs), *feature_names()]
                run_child(baseline, results[SCIKIT_LEARN, rows])
                if ours.read_bytes() != theirs.read_bytes():
                    raise BenchError(
                        f"{source.name}: make score and scikit-learn's predict wrote different predictions"
                    )
    return results


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def figures_table(results: dict[tuple[str, int], Runs]) -> list[str]:
    rows = [
        [name, f"{count:,}", f"{statistics.median(runs.seconds):.2f}", f"{runs.rate(count):,.0f}",
         f"{statistics.median(runs.cpu_seconds):.2f}", f"{runs.cpu_rate(count):,.0f}", f"{runs.rss():.0f}"]
        for (name, count), runs in results.items()
    ]  # fmt: skip
    header = ["program", "rows", "wall time (s)", "rows/s", "CPU time (s)", "rows per CPU second", "peak RSS (MiB)"]
    return report.table(header, rows)


def targets(results: dict[tuple[str, int], Runs], row_counts: list[int]) -> list[str]:
    """The issue's three targets and whether this run met them, on the largest file."""
    small, large = min(row_counts), max(row_counts)
    rate = results[PROJECT, large].rate(large)
    ratio = rate / results[SCIKIT_LEARN, large].rate(large)
    growth = results[PROJECT, large].rss() / results[PROJECT, small].rss() - 1
    return [
        f"- {large:,} rows end to end: {rate:,.0f} rows/s (target ≥ {TARGET_ROWS_PER_S:,}: "
        f"{verdict(rate >= TARGET_ROWS_PER_S)})",
        f"- against scikit-learn's loop on the same file: {ratio:.2f}x (target ≥ {TARGET_RATIO:.1f}x: "
        f"{verdict(ratio >= TARGET_RATIO)})",
        f"- peak RSS, {large:,} rows against {small:,}: {growth:+.1%} (target within ±{RSS_TOLERANCE:.0%}: "
        f"{verdict(abs(growth) <= RSS_TOLERANCE)})",
    ]


def run_line(row_counts: list[int], rounds: int) -> str:
    counts = " ".join(str(count) for count in row_counts)
    return (
        f"`python -m bench.scoring --rows {counts} --rounds {rounds}` on {time.strftime('%Y-%m-%d')}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {rounds} interleaved rounds per file "
        "(Iris rows, an id column, no probabilities), medians. The machine is shared: absolute figures are "
        "noisy, the ratios within one run are what to compare; CPU time (user + system) varies less than wall time."
    )


@dataclass(frozen=True)
class BatchJob:
    """What the estimate takes from template.yaml's defaults."""

    rows_per_batch: int
    max_concurrency: int
    memory_mb: int


def batch_job_defaults(template: Path = TEMPLATE) -> BatchJob:
    document = yaml_parse(template.read_text())
    parameters = document["Parameters"]
    function = document["Resources"]["BatchScoringFunction"]["Properties"]
    return BatchJob(
        int(parameters["RowsPerBatch"]["Default"]),
        int(parameters["BatchMaxConcurrency"]["Default"]),
        int(function["MemorySize"]),
    )


@dataclass(frozen=True)
class Estimate:
    """The Distributed Map job per million rows, from `rate`: rows per CPU second locally, what a
    function with a whole vCPU to itself is assumed to score; below that, Lambda gives a function
    CPU in proportion to its memory."""

    rate: float
    job: BatchJob

    @property
    def function_rate(self) -> float:
        return self.rate * min(1.0, self.job.memory_mb / report.FULL_VCPU_MB)

    @property
    def batches(self) -> float:
        return 1e6 / self.job.rows_per_batch

    @property
    def batch_s(self) -> float:
        return self.job.rows_per_batch / self.function_rate

    @property
    def seconds(self) -> float:
        return 1e6 / (self.function_rate * self.job.max_concurrency)

    @property
    def lambda_cost(self) -> float:
        gb_seconds = self.batch_s * self.job.memory_mb / 1024
        return self.batches * (report.PRICE_PER_REQUEST + gb_seconds * report.PRICE_PER_GB_SECOND[ARCHITECTURE])

    @property
    def states_cost(self) -> float:
        express = PRICE_PER_EXPRESS_REQUEST + self.batch_s * EXPRESS_MEMORY_GB * PRICE_PER_EXPRESS_GB_SECOND
        return self.batches * (PRICE_PER_TRANSITION + express)

    def time_text(self) -> str:
        return f"{self.seconds / 60:.1f} min" if self.seconds >= 60 else f"{self.seconds:.1f} s"

    def summary(self) -> list[str]:
        """README.md's few lines."""
        job = self.job
        rows = [
            [f"rows/s per scoring function ({job.memory_mb:,} MB)", f"{self.function_rate:,.0f}"],
            [
                f"scoring time per million rows at MaxConcurrency {job.max_concurrency} (a lower bound)",
                self.time_text(),
            ],
            ["cost per million rows (Lambda and Step Functions)", f"${self.lambda_cost + self.states_cost:.4f}"],
        ]
        return [
            f"Estimated by `make bench-scoring` for the job's defaults ({job.rows_per_batch:,} rows per batch); "
            "assumptions and formula in [docs/scoring.md](docs/scoring.md):",
            "",
            *report.table(["Distributed Map job", "estimate"], rows),
        ]

    def details(self) -> list[str]:
        """docs/scoring.md's estimate: assumptions, every figure and the formula."""
        job, memory_gb = self.job, self.job.memory_mb / 1024
        rows = [
            [f"rows/s per concurrent function ({job.memory_mb:,} MB)", f"{self.function_rate:,.0f}"],
            [f"scoring time per batch of {job.rows_per_batch:,} rows", f"{self.batch_s * 1000:.0f} ms"],
            [f"rows/s at MaxConcurrency {job.max_concurrency}", f"{self.function_rate * job.max_concurrency:,.0f}"],
            ["scoring time per million rows (compute only, a lower bound)", self.time_text()],
            [f"Lambda ({ARCHITECTURE}, {job.memory_mb:,} MB) per million rows", f"${self.lambda_cost:.4f}"],
            ["Step Functions per million rows", f"${self.states_cost:.4f}"],
            ["total per million rows", f"${self.lambda_cost + self.states_cost:.4f}"],
        ]
        return [
            "The Distributed Map job, as `template.yaml` deploys it by default "
            f"({job.rows_per_batch:,} rows per batch, MaxConcurrency {job.max_concurrency}, a {job.memory_mb:,} MB "
            f"scoring function): a function with a whole vCPU ({report.FULL_VCPU_MB:,} MB) is assumed to score "
            "as fast as `make score` did here per CPU second on the largest file, and a smaller one in proportion "
            "to its memory. Not counted: cold starts, S3 reads and writes, and Step Functions' own latency per "
            "child execution, which at this rate may well exceed the scoring time per batch: read the time as a "
            "lower bound.",
            "",
            *report.table(["Distributed Map job", "estimate"], rows),
            "",
            "Per million rows, with rate the rows/s per function:",
            "",
            "```text",
            f"batches B      = 1,000,000 / {job.rows_per_batch:,}",
            f"Lambda         = B * (${report.PRICE_PER_REQUEST:.7f} per request + {job.rows_per_batch:,} / rate s"
            f" * {memory_gb:.3f} GB * ${report.PRICE_PER_GB_SECOND[ARCHITECTURE]:.10f} per GB-s)",
            f"Step Functions = B * (${PRICE_PER_TRANSITION:.6f} per parent transition"
            f" + ${PRICE_PER_EXPRESS_REQUEST:.6f} per EXPRESS child"
            f" + {job.rows_per_batch:,} / rate s * {EXPRESS_MEMORY_GB:.4f} GB"
            f" * ${PRICE_PER_EXPRESS_GB_SECOND:.8f} per GB-s)",
            f"time           = 1,000,000 / (rate * {job.max_concurrency})",
            "```",
        ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=list(ROW_COUNTS), help="file sizes, in rows")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each program on each file")
    parser.add_argument("--package", type=Path, default=DEFAULT_PACKAGE, help="the built package")
    parser.add_argument("--no-write", action="store_true", help="print the tables, leave the documents alone")
    args = parser.parse_args(argv)
    if not (args.package / "app.py").is_file():
        raise SystemExit(f"no built package at {args.package}: run make build first")
    try:
        results = measure(args.rows, args.rounds, args.package)
    except BenchError as error:
        raise SystemExit(f"bench.scoring: {error}") from None
    largest = max(args.rows)
    figures = [
        run_line(args.rows, args.rounds),
        "",
        *figures_table(results),
        "",
        *targets(results, args.rows),
    ]
    estimated = Estimate(results[PROJECT, largest].cpu_rate(largest), batch_job_defaults())
    measured = [*figures, "", *estimated.details()]
    print("\n".join(measured))  # noqa: T201 - the benchmark's output
    if not args.no_write:
        sections = {SECTION: "\n".join(measured), ESTIMATE_SECTION: "\n".join(estimated.summary())}
        report.update_documents(PROJECT_ROOT, sections)


if __name__ == "__main__":
    main()
