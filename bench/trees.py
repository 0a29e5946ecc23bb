"""Tree models at a small and a production size: the compiled tree engine against the library it
was trained with, in the same run. Writes the `trees` section of docs/benchmark.md (never copied
by hand) and prints the same table.

    python -m bench.trees [--production-trees 500] [--production-rows 100000] [--rounds 5]

Per model: compile + gate time (compile, probes and the exactness gate, as the build runs them),
the compiled file against joblib's, cold start and peak RSS of a fresh process that loads the
model and answers one row (the compiled engine with numpy alone, against joblib + the library),
and warm latency at 1, 100 and 10,000 rows against the library's own predict_proba (predict for
regressors). FAMILIES holds one entry per family; another family (XGBoost, LightGBM) adds its
small and production builders there and its rows join the table.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier

from bench.report import SECTION_DOCUMENTS, replace_between_markers, table
from build.engines import check_exactness, compile_estimator, compiler_for
from build.engines.base import serialize
from build.sizes import MB
from serving.engines import load_engine

ROOT = Path(__file__).resolve().parents[1]
SERVING = ROOT / "functions" / "predict"
BATCHES = (1, 100, 10_000)
SEED = 0


@dataclass(frozen=True)
class Size:
    trees: int
    rows: int
    features: int = 20


Builder = Callable[[Size], Any]
FAMILIES: dict[str, Builder] = {
    "RandomForest (default depth)": lambda size: RandomForestClassifier(
        n_estimators=size.trees, random_state=SEED, n_jobs=2
    ),
    "GradientBoosting": lambda size: GradientBoostingClassifier(n_estimators=size.trees, random_state=SEED),
    "HistGradientBoosting": lambda size: HistGradientBoostingClassifier(
        max_iter=size.trees, early_stopping=False, random_state=SEED
    ),
}
"""Each family's model for a size; fitted on `dataset(size)`."""


def dataset(size: Size) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    rows, target = make_classification(
        n_samples=size.rows, n_features=size.features, n_informative=size.features // 2, random_state=SEED
    )
    return np.asarray(rows, dtype=np.float64), np.asarray(target, dtype=np.int64)


def best_ms(call: Callable[[], object], rounds: int) -> float:
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return min(timings) * 1000


COLD = """
import sys, time
start = time.perf_counter()
import numpy as np
row = np.load(sys.argv[2])
if sys.argv[1].endswith(".npz"):
    from serving.engines import load_engine
    with np.load(sys.argv[1], allow_pickle=False) as stored:
        model = load_engine({name: stored[name] for name in stored.files})
else:
    import joblib
    model = joblib.load(sys.argv[1])
model.predict_proba(row)
# VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec.
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print((time.perf_counter() - start) * 1000, peak / 1024)
"""


def cold_start(model_file: Path, row_file: Path, rounds: int) -> tuple[float, float]:
    """Median ms from interpreter start to the first answer, and peak RSS (MiB), in fresh processes."""
    env = {**os.environ, "PYTHONPATH": str(SERVING), "OMP_NUM_THREADS": "1"}
    runs = []
    for _ in range(rounds):
        start = time.perf_counter()
        output = subprocess.run(
            [sys.executable, "-c", COLD, str(model_file), str(row_file)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout.split()
        runs.append(((time.perf_counter() - start) * 1000, float(output[1])))
    return statistics.median(ms for ms, _ in runs), max(rss for _, rss in runs)


def measure(family: str, label: str, size: Size, rounds: int, scratch: Path) -> list[str]:
    rows, target = dataset(size)
    estimator = FAMILIES[family](size).fit(rows, target)
    start = time.perf_counter()
    compiler = compiler_for(estimator)
    payload = serialize(compile_estimator(estimator))
    with np.load(io.BytesIO(payload), allow_pickle=False) as stored:
        engine = load_engine({name: stored[name] for name in stored.files})
    probes = compiler.probe_rows(estimator, rows)
    sample = rows[np.random.default_rng(SEED).choice(len(rows), size=min(len(rows), 20_000), replace=False)]
    checked = check_exactness(estimator, engine, {"rows": sample, "probes": probes})
    gate_s = time.perf_counter() - start
    npz, pickled, row_file = scratch / f"{label}.npz", scratch / f"{label}.joblib", scratch / f"{label}-row.npy"
    npz.write_bytes(payload)
    joblib.dump(estimator, pickled)
    np.save(row_file, rows[:1])
    compiled_cold, compiled_rss = cold_start(npz, row_file, rounds)
    library_cold, library_rss = cold_start(pickled, row_file, rounds)
    batch_rows = np.resize(rows, (max(BATCHES), rows.shape[1]))
    warm = []
    for batch in BATCHES:
        batch_of = batch_rows[:batch]
        ours = best_ms(lambda: engine.predict_proba(batch_of), rounds)  # noqa: B023 (called at once)
        theirs = best_ms(lambda: estimator.predict_proba(batch_of), rounds)  # noqa: B023
        warm.append(f"{ours:.2f} / {theirs:.2f} ({ours / theirs:.2f}x)")
    return [
        family,
        f"{label}: {size.trees} trees, {size.rows:,} rows",
        f"{gate_s:.1f} s ({checked:,} rows)",
        f"{npz.stat().st_size / MB:.1f} / {pickled.stat().st_size / MB:.1f}",
        f"{compiled_cold:.0f} / {library_cold:.0f} ({compiled_cold / library_cold:.2f}x)",
        f"{compiled_rss:.0f} / {library_rss:.0f}",
        *warm,
    ]


HEADER = [
    "family",
    "model",
    "compile + gate",
    "file MB (compiled / joblib)",
    "cold start ms (compiled / library)",
    "peak RSS MiB (compiled / library)",
    *(f"warm ms at {batch:,} rows (compiled / library)" for batch in BATCHES),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-trees", type=int, default=10)
    parser.add_argument("--small-rows", type=int, default=2_000)
    parser.add_argument("--production-trees", type=int, default=500)
    parser.add_argument("--production-rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    args = parser.parse_args(argv)
    sizes = {
        "small": Size(args.small_trees, args.small_rows),
        "production": Size(args.production_trees, args.production_rows),
    }
    with tempfile.TemporaryDirectory() as scratch:
        results = [
            measure(family, label, size, args.rounds, Path(scratch))
            for family in args.families
            for label, size in sizes.items()
        ]
    load = os.getloadavg()
    lines = [
        f"`python -m bench.trees {' '.join(argv if argv is not None else sys.argv[1:])}`, "
        f"{time.strftime('%Y-%m-%d')}, load average {load[0]:.1f}; best of {args.rounds} warm runs, "
        f"median of {args.rounds} cold starts (a fresh process loading the model and answering one row). "
        "Warm: predict_proba; the library is scikit-learn's own.",
        "",
        *table(HEADER, results),
    ]
    content = "\n".join(lines)
    print(content)  # noqa: T201 - the benchmark's output
    document = ROOT / SECTION_DOCUMENTS["trees"]
    document.write_text(replace_between_markers(document.read_text(), "trees", content))


if __name__ == "__main__":
    main()
