"""Reporting the benchmark: targets and their verdicts, the Markdown tables, bench/RESULTS.md,
and the generated sections of docs/ (between `<!-- bench:start NAME -->` and
`<!-- bench:end NAME -->`, so no figure is ever copied by hand).
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.measure import IMPORT_RUNS, BatchTiming, ImportBreakdown, Variant, percentile
from bench.packages import Build
from build.sizes import MB, SizeReport

BASELINE, SCIKIT_LEARN_ENGINE, PROJECT = "baseline", "scikit-learn engine", "compiled (project)"
PROJECT_TRACED = "compiled, tracing on"
NOT_MEASURED = "-"
# Lambda's published prices (us-east-1): per request, and per GB-second of duration.
PRICE_PER_REQUEST = 0.20 / 1e6
PRICE_PER_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
FULL_VCPU_MB = 1769
MEMORY_SIZES_MB = (128, 256, 512, 1024, 1769, 3008)


class MarkerError(Exception):
    """A document lacks the markers (or has them twice, or out of order) that bound a generated section."""


@dataclass(frozen=True)
class Target:
    """At most `limit`: a ratio to the variant `against`, or an absolute figure when it is None."""

    limit: float
    against: str | None = None

    def met(self, value: float, reference: float | None) -> bool:
        return (value / reference if reference is not None else value) <= self.limit

    def describe(self) -> str:
        return f"≤ {self.limit:.2f}x {self.against}" if self.against else f"≤ {self.limit:g}"


def said(met: bool) -> str:
    return "met" if met else "MISSED"


def verdict(target: Target, value: float, reference: float | None = None) -> str:
    """The target and whether `value` (against `reference` for a ratio) meets it."""
    return f"{target.describe()} {said(target.met(value, reference))}"


@dataclass(frozen=True)
class Metric:
    """A row of the comparison: its label, how to read it from a measured variant, and its format."""

    label: str
    read: Callable[[Variant], float]
    format: str

    @property
    def name(self) -> str:
        """The label without its statistic: "cold start" for "cold start, median (s)"."""
        return self.label.split(",")[0]


def _size(variant: Variant) -> SizeReport:
    if variant.size is None:
        raise ValueError(f"{variant.name}: package size not measured")
    return variant.size


COLD = Metric("cold start, median (s)", lambda v: statistics.median(v.cold_s), "{:.3f}")
WARM = Metric("warm request, median (ms)", lambda v: statistics.median(v.warm_ms), "{:.3f}")
WARM_P99 = Metric("warm request, p99 (ms)", lambda v: percentile(v.warm_ms, 0.99), "{:.3f}")
RSS = Metric("peak RSS, median (MiB)", lambda v: statistics.median(v.rss_mib), "{:.0f}")
UNZIPPED = Metric("package unzipped (MB)", lambda v: _size(v).unzipped_bytes / MB, "{:.1f}")
ZIPPED = Metric("package zipped (MB)", lambda v: _size(v).zipped_bytes / MB, "{:.1f}")
METRICS = (COLD, WARM, WARM_P99, RSS, UNZIPPED, ZIPPED)

COMPARISON_TARGETS: dict[str, dict[str, list[Target]]] = {
    SCIKIT_LEARN_ENGINE: {
        COLD.label: [Target(0.40, BASELINE)],
        WARM.label: [Target(0.25, BASELINE)],
        UNZIPPED.label: [Target(180)],
    },
    PROJECT: {
        COLD.label: [Target(0.35, SCIKIT_LEARN_ENGINE), Target(0.10, BASELINE)],
        WARM.label: [Target(0.06, BASELINE)],
        RSS.label: [Target(70)],
        UNZIPPED.label: [Target(80)],
    },
}
COMPARISON_RATIOS = ((PROJECT, BASELINE), (PROJECT, SCIKIT_LEARN_ENGINE), (SCIKIT_LEARN_ENGINE, BASELINE))
TRACING_RATIO = (PROJECT_TRACED, PROJECT)
# Every compiled model against its own scikit-learn-engine build (issue 9).
MODEL_TARGETS = (
    (UNZIPPED, Target(80)),
    (RSS, Target(80)),
    (COLD, Target(0.35, SCIKIT_LEARN_ENGINE)),
    (WARM, Target(1.0, SCIKIT_LEARN_ENGINE)),
)
BATCH_TARGET = Target(1.0, "scikit-learn")


@dataclass(frozen=True)
class ModelResult:
    """One model spec, built with the compiled engine where one supports it and with scikit-learn."""

    model: str
    compiled: Build
    compiled_variant: Variant
    scikit_learn: Build
    scikit_learn_variant: Variant
    batches: Sequence[BatchTiming] = ()
    batch_error: str | None = None


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table; a `|` inside a cell is escaped so it cannot split the cell."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(row) for row in rows)]


def comparison_table(variants: Sequence[Variant]) -> list[str]:
    """The project against the naive baseline and its own scikit-learn engine, one row per metric."""
    names = [variant.name for variant in variants]
    pairs = [pair for pair in (*COMPARISON_RATIOS, TRACING_RATIO) if set(pair) <= set(names)]
    header = ["", *names, *(f"{a} / {b}" for a, b in pairs), "targets"]
    rows = []
    for metric in METRICS:
        values = {variant.name: metric.read(variant) for variant in variants}
        verdicts = [
            f"{name} {verdict(target, values[name], values[target.against] if target.against else None)}"
            for name in names
            for target in COMPARISON_TARGETS.get(name, {}).get(metric.label, [])
        ]
        cells = [metric.format.format(values[name]) for name in names]
        ratios = [f"{values[a] / values[b]:.2f}x" for a, b in pairs]
        rows.append([metric.label, *cells, *ratios, "; ".join(verdicts)])
    return table(header, rows)


def engine_label(build: Build) -> str:
    """Which engine serves the build: the compiled one it was asked for, or the fallback, said plainly."""
    if build.error is not None:
        return f"{build.engine_choice}: not built ({build.error})"
    if build.fell_back:
        return f"{build.served_by} (no compiled engine for this model: the {build.engine_choice} build fell back)"
    return build.served_by


def model_verdicts(result: ModelResult) -> str:
    """The compiled build's targets, or why there is no verdict."""
    compiled, reference = result.compiled_variant, result.scikit_learn_variant
    if result.compiled.error is None and result.compiled.fell_back:
        return "no verdict: not compiled"
    if compiled.error is not None or reference.error is not None:
        return "no verdict: not measured"
    verdicts = []
    for metric, target in MODEL_TARGETS:
        value = metric.read(compiled)
        against = metric.read(reference) if target.against else None
        shown = f"{value / against:.2f}x" if against is not None else metric.format.format(value)
        verdicts.append(f"{metric.name} {shown} {verdict(target, value, against)}")
    return "; ".join(verdicts)


def models_table(results: Sequence[ModelResult]) -> list[str]:
    """Each model's two builds side by side; the targets are the compiled build's against its scikit-learn build."""
    measured = (UNZIPPED, ZIPPED, COLD, WARM, RSS)
    header = ["model", "engine", *(metric.label for metric in measured), "targets"]
    rows = []
    for result in results:
        for build, variant, targets in (
            (result.compiled, result.compiled_variant, model_verdicts(result)),
            (result.scikit_learn, result.scikit_learn_variant, ""),
        ):
            if variant.error is not None:
                reason = engine_label(build) if build.error is not None else f"{build.engine_choice}: {variant.error}"
                rows.append([result.model, reason, *(NOT_MEASURED for _ in measured), targets])
            else:
                cells = [metric.format.format(metric.read(variant)) for metric in measured]
                rows.append([result.model, engine_label(build), *cells, targets])
    return table(header, rows)


def batch_row(result: ModelResult, timing: BatchTiming) -> list[str]:
    """The cells after the model: rows, engine, both times, their ratio and the verdict."""
    engine = engine_label(result.compiled)
    if timing.error is not None:
        return [f"{timing.rows:,}", engine, NOT_MEASURED, NOT_MEASURED, NOT_MEASURED, f"MISSED: {timing.error}"]
    ratio = timing.engine_s / timing.estimator_s
    met = verdict(BATCH_TARGET, timing.engine_s, timing.estimator_s)
    target = "no verdict: not compiled" if result.compiled.fell_back else met
    times = [f"{timing.engine_s * 1e3:.3f}", f"{timing.estimator_s * 1e3:.3f}"]
    return [f"{timing.rows:,}", engine, *times, f"{ratio:.2f}x", target]


def batch_table(results: Sequence[ModelResult]) -> list[str]:
    """Each model's compiled engine against the estimator's own `predict`, in process."""
    header = ["model", "rows", "engine", "engine (ms)", "scikit-learn predict (ms)", "ratio", "target"]
    rows = []
    for result in results:
        if result.batch_error is not None:
            rows.append([result.model, *[NOT_MEASURED] * 5, f"not measured: {result.batch_error}"])
        rows += [[result.model, *batch_row(result, timing)] for timing in result.batches]
    return table(header, rows)


def cost_table(project: Variant) -> list[str]:
    """Estimated warm duration, cold start and price per million predictions by memory size.

    Lambda gives a function CPU in proportion to its memory (one full vCPU at 1,769 MB), so
    single-threaded times measured here on one core scale by 1769 / memory below that; each
    invocation is billed per started millisecond.
    """
    warm_ms, cold_s = WARM.read(project), COLD.read(project)
    rows = []
    for memory in MEMORY_SIZES_MB:
        slowdown = max(1.0, FULL_VCPU_MB / memory)
        billed_ms = math.ceil(warm_ms * slowdown)
        gb_seconds = billed_ms / 1000 * memory / 1024
        prices = [1e6 * (PRICE_PER_REQUEST + gb_seconds * PRICE_PER_GB_SECOND[arch]) for arch in ("x86_64", "arm64")]
        rows.append(
            [f"{memory:,}", f"{warm_ms * slowdown:.2f} ({billed_ms})", f"{cold_s * slowdown:.2f}",
             f"{prices[0]:.4f}", f"{prices[1]:.4f}"]
        )  # fmt: skip
    header = ["memory (MB)", "warm request (ms, billed)", "cold start (s)"]
    return table([*header, "$ per million, x86_64", "$ per million, arm64"], rows)


def breakdown_section(name: str, breakdown: ImportBreakdown) -> list[str]:
    """Where a package's cold start imports go, by module group, each with its largest packages."""
    rows = [
        [group, f"{ms:.0f}", f"{ms / breakdown.total_ms:.0%}", ", ".join(f"{p} {t:.0f}" for p, t in packages[:5])]
        for group, ms, packages in breakdown.by_group()
    ]
    return [
        f"Where the {name} package's cold start goes: {breakdown.total_ms:.0f} ms of imports through the first "
        f"response (`-X importtime` self time, the median of {IMPORT_RUNS} runs per package), by module group:",
        "",
        *table(["module group", "ms", "share", "largest packages (ms)"], rows),
    ]


def run_line(rounds: int, warm: int) -> str:
    """The command, date and machine the figures come from."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())
    return (
        f"`python -m bench.run --rounds {rounds} --warm {warm}` on {time.strftime('%Y-%m-%d')}: "
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}. "
        f"{rounds} interleaved cold starts per package, {warm} warm requests after each."
    )


MODELS_INTRO = (
    "Per model (`models/*.toml`), each built with the compiled engine where one supports it and with "
    "the scikit-learn engine; the targets are the compiled build's: "
    + ", ".join(f"{metric.name} {target.describe()}" for metric, target in MODEL_TARGETS)
    + ". Each request is the model's first held-out row:"
)
BATCH_INTRO = (
    "Batch compute, each model's engine against the estimator's own `predict` on rows resampled from "
    "the model's data (in process, best of two medians each):"
)
COST_INTRO = (
    "Estimated from the compiled (project) figures above: Lambda's CPU share grows with memory up to one "
    "vCPU at 1,769 MB; published prices: $0.20 per million requests, $0.0000166667 (x86_64) or "
    "$0.0000133334 (arm64) per GB-second."
)


def headline(comparison: Sequence[Variant], results: Sequence[ModelResult], rounds: int, warm: int) -> list[str]:
    """The tables docs/benchmark.md shows."""
    answers = ", ".join(f"{variant.name} `{variant.first_response}`" for variant in comparison)
    return [
        f"{run_line(rounds, warm)} First responses: {answers}.",
        "",
        *comparison_table(comparison),
        "",
        MODELS_INTRO,
        "",
        *models_table(results),
        "",
        BATCH_INTRO,
        "",
        *batch_table(results),
    ]


def readme_summary(comparison: Sequence[Variant]) -> list[str]:
    """The README's one-paragraph claim: the project's package and latency against the naive
    baseline (the seed's Flask app packaged as is), as `make bench` measured them."""
    measured = {variant.name: variant for variant in comparison}
    project, baseline = measured[PROJECT], measured[BASELINE]
    facts = [
        f"{metric.name} {metric.format.format(metric.read(project))} against "
        f"{metric.format.format(metric.read(baseline))} ({metric.read(project) / metric.read(baseline):.2f}x)"
        for metric in (UNZIPPED, COLD, WARM)
    ]
    return [
        f"Measured by `make bench` on {time.strftime('%Y-%m-%d')} against a plain build of the same model: "
        + "; ".join(facts)
        + " ([docs/benchmark.md](docs/benchmark.md))."
    ]


def cost_section(project: Variant) -> list[str]:
    return [COST_INTRO, "", *cost_table(project)]


def results_document(headline_lines: Sequence[str], cost_lines: Sequence[str], breakdowns: Sequence[str]) -> str:
    """bench/RESULTS.md: everything the run measured."""
    sections = ["# Benchmark results", "", *headline_lines, "", "## Memory and cost", "", *cost_lines, ""]
    return "\n".join([*sections, "## Imports", "", *breakdowns, ""])


def start_marker(name: str) -> str:
    return f"<!-- bench:start {name} -->"


def end_marker(name: str) -> str:
    return f"<!-- bench:end {name} -->"


def replace_between_markers(text: str, name: str, content: str) -> str:
    """`text` with whatever lies between the `name` markers replaced by `content`; the markers
    themselves and everything outside them are kept."""
    return replace_between(text, start_marker(name), end_marker(name), content)


def replace_between(text: str, start: str, end: str, content: str) -> str:
    """`text` with whatever lies between the lines `start` and `end` (each there once, in that
    order) replaced by `content`."""
    counts = {marker: text.count(marker) for marker in (start, end)}
    if any(count != 1 for count in counts.values()):
        found = ", ".join(f"`{marker}` {count} times" for marker, count in counts.items())
        raise MarkerError(f"a generated section needs each of its markers once; found {found}")
    before, _, rest = text.partition(start)
    if end not in rest:
        raise MarkerError(f"`{end}` comes before `{start}`; put the end marker after the start marker")
    _, _, after = rest.partition(end)
    return f"{before}{start}\n{content.strip()}\n{end}{after}"


# The document, relative to the project root, that holds each generated section.
SECTION_DOCUMENTS = {
    "summary": Path("README.md"),
    "comparison": Path("docs/benchmark.md"),
    "imports": Path("docs/benchmark.md"),
    "trees": Path("docs/benchmark.md"),  # bench/trees.py's
    "cost": Path("docs/operations.md"),
    "scoring": Path("docs/scoring.md"),  # bench/scoring.py's
    "scoring-estimate": Path("README.md"),  # bench/scoring.py's
    "capture-cost": Path("docs/drift.md"),  # bench/capture.py's
    "drift-run-cost": Path("docs/drift.md"),  # bench/capture.py's
    "drift-measured": Path("docs/drift.md"),  # bench/capture.py's
    "mutation-audit": Path("docs/mutation.md"),  # tools/mutation/mutate.py's
}


def update_documents(root: Path, sections: Mapping[str, str]) -> None:
    """Rewrite each of `sections` in its document under `root` (SECTION_DOCUMENTS)."""
    for document in sorted({SECTION_DOCUMENTS[name] for name in sections}):
        update_document(
            root / document,
            {name: content for name, content in sections.items() if SECTION_DOCUMENTS[name] == document},
        )


def update_document(path: Path, sections: Mapping[str, str]) -> None:
    """Rewrite the generated sections of the document at `path`, or raise MarkerError saying which is missing."""
    text = path.read_text()
    for name, content in sections.items():
        try:
            text = replace_between_markers(text, name, content)
        except MarkerError as error:
            raise MarkerError(f"{path}: {error}") from None
    path.write_text(text)
