"""Side-by-side benchmark: this project's package (compiled engine), the same project with the
scikit-learn engine, and the naive tutorial build; then every shipped model spec built with the
compiled engine and with the scikit-learn engine.

Packages are built or reused (bench/packages.py), measured interleaved in fresh processes and
in process (bench/measure.py), and reported (bench/report.py): the tables are printed, written
to bench/RESULTS.md, and written into docs/ between its `bench:start`/`bench:end` markers.
Figures are for reading: this machine is shared and noisy, so compare the ratios measured
within one run.

    python -m bench.run [--rounds 7] [--warm 300]      (or: make bench)
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from bench import measure, packages, report
from bench.measure import Variant
from bench.packages import AUTO, BUILD_DIR, ENGINE_CHOICES, Build
from build import DEFAULT_SPEC, PROJECT_ROOT
from build.runtime_provided import TRACING_ENVIRONMENT, ensure_runtime_provided
from build.spec import SpecError
from serving.manifest import SCIKIT_LEARN

RESULTS = packages.BENCH_DIR / "RESULTS.md"


@dataclass(frozen=True)
class ModelRun:
    """One model spec's two builds, the variants that measure them, and the model's own rows."""

    model: str
    builds: dict[str, Build]
    variants: dict[str, Variant]
    rows: NDArray[Any] | None
    rows_error: str | None


def prepare_model(spec_path: Path, rebuild: bool) -> ModelRun:
    """Build (or reuse) both packages of a spec, and write its request event from its first check row."""
    builds = {choice: packages.build_model(spec_path, choice, rebuild) for choice in ENGINE_CHOICES}
    model = spec_path.stem
    event = BUILD_DIR / model / "request.json"
    rows, rows_error = None, None
    try:
        rows = measure.model_rows(spec_path)
    except SpecError as error:
        rows_error = f"no rows: {error}"
    else:
        template = json.loads(measure.SEED_EVENT.read_text())
        event.write_text(json.dumps(measure.request_event(template, list(rows[0])), indent=2) + "\n")
    variants = {
        choice: Variant(
            f"{model}, {choice}",
            build.package,
            event=event,
            error=f"not built: {build.error}" if build.error else rows_error,
        )
        for choice, build in builds.items()
    }
    return ModelRun(model, builds, variants, rows, rows_error)


def model_result(run: ModelRun) -> report.ModelResult:
    """The model's measured builds, and its compiled build's engine against the estimator's own
    predict, in process."""
    compiled, scikit_learn = run.builds[AUTO], run.builds[SCIKIT_LEARN]
    result = report.ModelResult(run.model, compiled, run.variants[AUTO], scikit_learn, run.variants[SCIKIT_LEARN])
    problem = next((build.error for build in (compiled, scikit_learn) if build.error), run.rows_error)
    if problem is not None or run.rows is None:
        return replace(result, batch_error=problem)
    try:
        engine = measure.load_engine(compiled.package)
    except measure.EngineLoadError as error:
        return replace(result, batch_error=str(error))
    estimator = measure.load_estimator(packages.estimator_file(scikit_learn))
    return replace(result, batches=measure.time_batches(engine, estimator, run.rows))


def comparison_variants(default: ModelRun, rebuild: bool) -> list[Variant]:
    """The default model's compiled and scikit-learn-engine packages, with tracing on, and the naive baseline."""
    if any(build.error for build in default.builds.values()):
        raise SystemExit(f"the default model {DEFAULT_SPEC.name} did not build: see {BUILD_DIR / default.model}")
    project, scikit_learn = default.builds[AUTO].package, default.builds[SCIKIT_LEARN].package
    baseline = packages.build_baseline(packages.estimator_file(default.builds[SCIKIT_LEARN]), rebuild)
    return [
        Variant(report.BASELINE, baseline),
        Variant(report.SCIKIT_LEARN_ENGINE, scikit_learn),
        Variant(report.PROJECT, project),
        # What turning tracing on costs (reported, not a target: off is the default).
        Variant(report.PROJECT_TRACED, project, environment=TRACING_ENVIRONMENT),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="cold starts per package")
    parser.add_argument("--warm", type=int, default=300, help="warm invocations after each cold start")
    parser.add_argument("--rebuild", action="store_true", help="rebuild every package even if its inputs are unchanged")
    args = parser.parse_args(argv)

    ensure_runtime_provided()
    runs = [prepare_model(spec_path, args.rebuild) for spec_path in packages.spec_paths()]
    comparison = comparison_variants(next(run for run in runs if run.model == DEFAULT_SPEC.stem), args.rebuild)
    model_variants = [variant for run in runs for variant in run.variants.values()]

    measure.measure_interleaved([*comparison, *model_variants], args.rounds, args.warm)
    failed = [variant.error for variant in comparison if variant.error]
    if failed:
        raise SystemExit("\n".join(failed))
    for variant in [*comparison, *model_variants]:
        if variant.error is None:
            measure.measure_size(variant)
    results = [model_result(run) for run in runs]
    breakdowns = [
        line
        for variant in comparison[1:3]
        for line in [*report.breakdown_section(variant.name, measure.import_breakdown(variant.package)), ""]
    ]

    headline = report.headline(comparison, results, args.rounds, args.warm)
    cost = report.cost_section(comparison[2])
    RESULTS.write_text(report.results_document(headline, cost, breakdowns))
    # docs/operations.md says in its own words what the cost table assumes.
    documented_cost = report.cost_table(comparison[2])
    sections = {
        "summary": "\n".join(report.readme_summary(comparison)),
        "comparison": "\n".join(headline),
        "imports": "\n".join(breakdowns),
        "cost": "\n".join(documented_cost),
    }
    report.update_documents(PROJECT_ROOT, sections)
    print(RESULTS.read_text())  # noqa: T201 - the benchmark's output
    incomplete = [result.model for result in results if result.batch_error or result.compiled_variant.error]
    if incomplete:
        print(f"not every model was measured: {', '.join(incomplete)} (see the tables)", file=sys.stderr)  # noqa: T201
        raise SystemExit(1)


if __name__ == "__main__":
    main()
