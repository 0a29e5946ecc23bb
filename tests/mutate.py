"""`make mutate`: mutation testing of the critical modules with mutmut, then a score per module.

mutmut names a mutant after its file's path (functions/predict/serving/model.py gives
`functions.predict.serving.model`) and switches it on only where the running function's
`__module__` equals that name. The Lambda roots are on sys.path (the package's layout), so the
code runs as `serving.model` and `hook`: this wrapper strips the roots from mutmut's names and
then hands its arguments to mutmut's own command line. What is mutated and which tests may kill
it is configured in pyproject.toml ([tool.mutmut]); docs/mutation.md says how to read the results.

    python tests/mutate.py run [MUTANT_GLOB...]   mutate for at most MUTATE_MINUTES, then score
    python tests/mutate.py score                  the score of the results so far
    python tests/mutate.py show NAME              any other mutmut command (show, apply, results)

mutmut keeps every verdict in mutants/ until the mutated function or its tests change, so each
run goes on where the last one stopped: `run` stops after its time budget and scores what has
been checked (the rest is counted as "not checked").
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

# Run as a script, not as `-m tests.mutate`: the tests run on mutmut's copy of the project in
# mutants/, and a `tests` package imported from here first would hide its conftest there. The
# project root goes first on sys.path, as for pytest; mutmut then swaps it for mutants/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# mutmut forks a process per mutant from one that has run scikit-learn: an OpenMP thread pool
# (HistGradientBoosting's) does not survive a fork, and the child hangs on its lock. One thread
# per process never starts the pool. Set before anything imports scikit-learn.
os.environ["OMP_NUM_THREADS"] = "1"
# Every mutant runs in a fresh pytest session: the session fixtures keep their trained models here
# (tests/conftest.py's TRAINING_CACHE_ENV), outside mutants/ so that a new mutmut copy reuses them,
# and a mutant's run costs its tests rather than retraining. `make clean` removes it.
# setdefault: pytest imports this file again from mutants/ as a plugin, and the cache stays put.
os.environ.setdefault("MUTATE_TRAINING_CACHE", str(Path(__file__).resolve().parents[1] / ".model-cache" / "mutate"))

import mutmut.__main__ as mutmut_cli
from _pytest.nodes import Item
from mutmut.utils.format_utils import get_mutant_name

# The directories Lambda puts on sys.path, as mutmut spells them in a mutant's name.
LAMBDA_ROOTS = ("functions.predict.", "functions.pretraffic.")
# A run's budget: under 30 minutes with mutant generation, the test passes and the score.
DEFAULT_MINUTES = 25.0
# The share of scored mutants a module's tests must kill (issue 13).
TARGET_SCORE = 0.90
# Statuses that are not a verdict on the tests: excluded from the score, listed in the table.
UNSCORED = frozenset({"skipped", "not checked", "check was interrupted by user", "equivalent"})
# Surviving mutants that cannot change what the code does, by module and mutated line, and why.
# A survivor whose line is listed counts as "equivalent"; once the line changes it counts as a
# survivor again, to be looked at afresh.
EQUIVALENT_MUTANTS: dict[tuple[str, str], str] = {
    (
        "functions/predict/serving/model.py",
        "with np.load(io.BytesIO(payload), allow_pickle=None) as stored:",
    ): "np.load tests `if not allow_pickle`: None refuses pickles as False does",
    (
        "functions/predict/serving/model.py",
        "with np.load(io.BytesIO(payload), ) as stored:",
    ): "np.load's allow_pickle defaults to False: the argument states it, it does not change it",
    (
        "functions/predict/serving/model.py",
        'recorded = {"feature_names": sklearn_engine.feature_names, "XXclass_namesXX": None}',
    ): "None means not recorded: _check_interface skips the entry before it reads its key",
    (
        "functions/predict/serving/model.py",
        'recorded = {"feature_names": sklearn_engine.feature_names, "CLASS_NAMES": None}',
    ): "None means not recorded: _check_interface skips the entry before it reads its key",
    (
        "functions/predict/serving/engines/forest.py",
        "return self.classes.take(np.argmax(proba, axis=1), axis=None), proba",
    ): "classes is 1-d: take along axis None or 0 picks the same labels",
    (
        "functions/predict/serving/engines/forest.py",
        "return self.classes.take(np.argmax(proba, axis=1), ), proba",
    ): "classes is 1-d: take along axis None or 0 picks the same labels",
    (
        "functions/predict/serving/engines/boosting.py",
        "exps = np.fromiter(map(math.exp, negated), dtype=None, count=raw.size)",
    ): "np.fromiter's dtype None is float64, the type math.exp returns",
    (
        "functions/predict/serving/engines/boosting.py",
        "exps = np.fromiter(map(math.exp, negated), dtype=np.float64, )",
    ): "count only preallocates: the iterator gives raw.size values either way",
    (
        "functions/predict/serving/engines/boosting.py",
        "exps = np.fromiter(map(_exp_or_inf, negated), dtype=None, count=raw.size)",
    ): "np.fromiter's dtype None is float64, the type math.exp returns",
    (
        "functions/predict/serving/engines/boosting.py",
        "exps = np.fromiter(map(_exp_or_inf, negated), dtype=np.float64, )",
    ): "count only preallocates: the iterator gives raw.size values either way",
    (
        "functions/predict/serving/engines/boosting.py",
        'scores = raw.copy(order="k")',
    ): 'numpy reads the order letter case-insensitively: "k" is "K"',
    (
        "functions/predict/serving/engines/boosting.py",
        "scores -= np.max(scores, axis=1).reshape(-2, 1)",
    ): "numpy takes any negative size as the unknown one: -2 is -1",
    (
        "functions/predict/serving/engines/boosting.py",
        "scores /= np.sum(scores, axis=1).reshape(-2, 1)",
    ): "numpy takes any negative size as the unknown one: -2 is -1",
    (
        "functions/predict/serving/engines/boosting.py",
        "proba = np.empty((raw.shape[0], 2), dtype=None)",
    ): "np.empty's default dtype is float64",
    (
        "functions/predict/serving/engines/boosting.py",
        "proba = np.empty((raw.shape[0], 2), )",
    ): "np.empty's default dtype is float64",
    (
        "functions/predict/serving/engines/linear.py",
        'with np.errstate(over="ignore", invalid=None):',
    ): "no decision makes exp or the division invalid: ±inf and NaN pass silently, warnings as errors",
    (
        "functions/predict/serving/engines/linear.py",
        'with np.errstate(over="ignore", ):',
    ): "no decision makes exp or the division invalid: ±inf and NaN pass silently, warnings as errors",
    (
        "functions/predict/serving/engines/linear.py",
        "for index in np.flatnonzero(~(np.abs(decision) <= COMPLEX_EXP_LIMIT)):",
    ): "at |d| = 700 the complex exp is libm's exp (glibc scales above ~709): the same bits",
    (
        "build/engines/boosting.py",
        "one_row = np.zeros((1, estimator.n_features_in_), dtype=None)",
    ): "the init estimator's prediction depends on neither the row nor its dtype",
    (
        "build/engines/boosting.py",
        "one_row = np.zeros((1, estimator.n_features_in_), )",
    ): "the init estimator's prediction depends on neither the row nor its dtype",
    (
        "build/engines/boosting.py",
        "one_row = np.zeros((2, estimator.n_features_in_), dtype=np.float32)",
    ): "the init estimator's prediction is the same for every row: row 0 of two is row 0 of one",
    (
        "build/engines/boosting.py",
        "baseline = np.asarray(estimator._raw_predict_init(one_row)[0], dtype=None)",
    ): "_raw_predict_init returns float64 already",
    (
        "build/engines/boosting.py",
        "baseline = np.asarray(estimator._raw_predict_init(one_row)[0], )",
    ): "_raw_predict_init returns float64 already",
    (
        "build/engines/boosting.py",
        "leaf = None",
    ): "a leaf's feature is never read: leaves are found by left == -1, and no split is on a negative feature",
    (
        "build/engines/boosting.py",
        "leaf = tree.children_left == -2",
    ): "a leaf's feature is never read: leaves are found by left == -1, and no split is on a negative feature",
    (
        "build/engines/boosting.py",
        "feature=np.where(None, -1, tree.feature).astype(np.intp),",
    ): "a leaf's feature is never read: leaves are found by left == -1, and no split is on a negative feature",
    (
        "build/engines/boosting.py",
        "feature=np.where(leaf, -2, tree.feature).astype(np.intp),",
    ): "a leaf's feature is never read: leaves are found by left == -1, and no split is on a negative feature",
    (
        "build/engines/boosting.py",
        "feature=np.where(leaf, +1, tree.feature).astype(np.intp),",
    ): "leaves' thresholds (-2.0) join feature 1's split values: an edge no node splits on, same masks either side",
    (
        "build/engines/boosting.py",
        "category_left=None,",
    ): "GradientBoosting has no categorical feature, and category_left is read only for one",
    (
        "build/engines/boosting.py",
        "left=tree.children_left.astype(None),",
    ): "the walk reads each child with int(): float64 holds these small integers exactly",
    (
        "build/engines/boosting.py",
        "right=tree.children_right.astype(None),",
    ): "the walk reads each child with int(): float64 holds these small integers exactly",
    (
        "build/engines/boosting.py",
        "feature=np.where(leaf, -1, tree.feature).astype(None),",
    ): "features are read with int() and compared by value: float64 holds these small integers exactly",
    (
        "build/engines/boosting.py",
        "threshold=tree.threshold.astype(None),",
    ): "scikit-learn's thresholds are float64 already",
    (
        "build/engines/boosting.py",
        "missing_left=np.zeros(tree.node_count, dtype=None),",
    ): "read as `not missing_left[node]`: 0.0 is falsy as False is",
    (
        "build/engines/boosting.py",
        "missing_left=np.zeros(tree.node_count, ),",
    ): "read as `not missing_left[node]`: 0.0 is falsy as False is",
    (
        "functions/predict/serving/schemas.py",
        '"XXfloat32_rangeXX", "Input should be within ±3.4e38, the range the model compares features in"',
    ): "pydantic's error type is read only to skip quoting a missing field's input: no client or log sees it",
    (
        "functions/predict/serving/schemas.py",
        '"FLOAT32_RANGE", "Input should be within ±3.4e38, the range the model compares features in"',
    ): "pydantic's error type is read only to skip quoting a missing field's input: no client or log sees it",
    (
        "functions/predict/serving/schemas.py",
        'raise PydanticCustomError("XXcategoryXX", "{accepted}", {"accepted": message})',
    ): "pydantic's error type is read only to skip quoting a missing field's input: no client or log sees it",
    (
        "functions/predict/serving/schemas.py",
        'raise PydanticCustomError("CATEGORY", "{accepted}", {"accepted": message})',
    ): "pydantic's error type is read only to skip quoting a missing field's input: no client or log sees it",
    (
        "functions/predict/serving/schemas.py",
        '_typed_dict("XXNamedRowXX", dict(zip(self.feature_names, types, strict=True)))',
    ): "the TypedDict's name is in no message and no published schema (openapi_body writes NamedRow itself)",
    (
        "functions/predict/serving/schemas.py",
        '_typed_dict("namedrow", dict(zip(self.feature_names, types, strict=True)))',
    ): "the TypedDict's name is in no message and no published schema (openapi_body writes NamedRow itself)",
    (
        "functions/predict/serving/schemas.py",
        '_typed_dict("NAMEDROW", dict(zip(self.feature_names, types, strict=True)))',
    ): "the TypedDict's name is in no message and no published schema (openapi_body writes NamedRow itself)",
    (
        "functions/predict/serving/schemas.py",
        '_typed_dict("NamedRow", dict(zip(self.feature_names, types, strict=None)))',
    ): "names and types are both made from self.features: always the same length",
    (
        "functions/predict/serving/schemas.py",
        '_typed_dict("NamedRow", dict(zip(self.feature_names, types, )))',
    ): "names and types are both made from self.features: always the same length",
    (
        "functions/predict/serving/schemas.py",
        '_typed_dict("NamedRow", dict(zip(self.feature_names, types, strict=False)))',
    ): "names and types are both made from self.features: always the same length",
    (
        "functions/predict/serving/schemas.py",
        '"properties": dict(zip(self.feature_names, values, strict=None)),',
    ): "names and value schemas are both made from self.features: always the same length",
    (
        "functions/predict/serving/schemas.py",
        '"properties": dict(zip(self.feature_names, values, )),',
    ): "names and value schemas are both made from self.features: always the same length",
    (
        "functions/predict/serving/schemas.py",
        '"properties": dict(zip(self.feature_names, values, strict=False)),',
    ): "names and value schemas are both made from self.features: always the same length",
    (
        "functions/predict/serving/schemas.py",
        "named_example = dict(zip(self.feature_names, row, strict=None))",
    ): "the example is the manifest's, whose validator makes it one value per feature",
    (
        "functions/predict/serving/schemas.py",
        "named_example = dict(zip(self.feature_names, row, ))",
    ): "the example is the manifest's, whose validator makes it one value per feature",
    (
        "functions/predict/serving/schemas.py",
        "named_example = dict(zip(self.feature_names, row, strict=False))",
    ): "the example is the manifest's, whose validator makes it one value per feature",
    (
        "functions/predict/serving/schemas.py",
        "classes = zip(manifest.classes, manifest.class_names, strict=None)",
    ): "the manifest's validator refuses class_names and classes of different lengths",
    (
        "functions/predict/serving/schemas.py",
        "classes = zip(manifest.classes, manifest.class_names, )",
    ): "the manifest's validator refuses class_names and classes of different lengths",
    (
        "functions/predict/serving/schemas.py",
        "classes = zip(manifest.classes, manifest.class_names, strict=False)",
    ): "the manifest's validator refuses class_names and classes of different lengths",
}


def runtime_mutant_name(relative_source_path: Path, mutant_method_name: str) -> str:
    """mutmut's name for a mutant, with the module named as the function imports it."""
    name = get_mutant_name(relative_source_path, mutant_method_name)
    for root in LAMBDA_ROOTS:
        name = name.removeprefix(root)
    return name


def module_statuses() -> dict[str, Counter[str]]:
    """The last run's mutant statuses, counted per mutated file."""
    mutmut_cli.Config.ensure_loaded()
    counts: dict[str, Counter[str]] = {}
    for path in mutmut_cli.walk_mutatable_files():
        data = mutmut_cli.SourceFileMutationData(path=path)
        data.load()
        if data.exit_code_by_key:
            counts[str(path)] = Counter(
                status_of(name, mutmut_cli.status_by_exit_code[code], path)
                for name, code in data.exit_code_by_key.items()
            )
    return counts


def status_of(mutant: str, status: str, path: Path) -> str:
    """mutmut's status, or "equivalent" for a survivor EQUIVALENT_MUTANTS lists."""
    if status != "survived":
        return status
    diff = mutmut_cli.get_diff_for_mutant(mutant, path=path)
    mutated = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return "equivalent" if len(mutated) == 1 and (str(path), mutated[0]) in EQUIVALENT_MUTANTS else status


def score_table(counts: dict[str, Counter[str]]) -> tuple[list[str], bool]:
    """One line per module: mutants, each status, and the killed share of the scored mutants."""
    columns = ["killed", "survived", "equivalent", "timeout", "no tests", "suspicious", "segfault", "not checked"]
    lines = [f"{'module':<52} {'mutants':>7} " + " ".join(f"{column:>11}" for column in columns) + f" {'score':>6}"]
    all_met = True
    for module, statuses in sorted(counts.items()):
        scored = sum(count for status, count in statuses.items() if status not in UNSCORED)
        # A timeout is a kill: the mutant made the tests hang, which the team would notice.
        killed = statuses["killed"] + statuses["timeout"] + statuses["segfault"]
        score = f"{killed / scored:.1%}" if scored else "-"
        all_met = all_met and (not scored or killed / scored >= TARGET_SCORE)
        row = " ".join(f"{statuses[column]:>11}" for column in columns)
        lines.append(f"{module:<52} {statuses.total():>7} {row} {score:>6}")
    return lines, all_met


def report() -> int:
    lines, all_met = score_table(module_statuses())
    sys.stdout.write("\n".join(lines) + "\n")
    if not all_met:
        sys.stdout.write(f"below the {TARGET_SCORE:.0%} target: python tests/mutate.py results lists the survivors\n")
    return 0 if all_met else 1


def pytest_sessionstart(session: object) -> None:
    """A pytest plugin hook (pyproject.toml passes `-p tests.mutate` to mutmut's runs): mutmut runs
    pytest many times in one process and its forks, and the function's logger keeps the stdout of
    the session that imported it, closed when that session ended; each session gets its own. Its
    metrics are flushed by the handler only, so a test that records one without the handler would
    leave it in the next session's first EMF document: each session starts with none."""
    observability = sys.modules.get("serving.observability")
    if observability is not None:
        observability.logger.registered_handler.stream = sys.stdout
        observability.metrics.clear_metrics()


def run(mutant_globs: list[str], minutes: float) -> int:
    """mutmut run in a child process, interrupted (as Ctrl-C would) when the budget is spent."""
    command = [sys.executable, __file__, "run-unbounded", *mutant_globs]
    with subprocess.Popen(command) as mutmut_run:
        try:
            mutmut_run.wait(timeout=minutes * 60)
        except subprocess.TimeoutExpired:
            sys.stdout.write(f"\nstopping after {minutes:g} minutes; `make mutate` again goes on from here\n")
            mutmut_run.send_signal(signal.SIGINT)
            mutmut_run.wait()
    return report()


def main(arguments: list[str]) -> int:
    if arguments[:1] == ["run"]:
        return run(arguments[1:], float(os.environ.get("MUTATE_MINUTES", DEFAULT_MINUTES)))
    if arguments == ["score"]:
        return report()
    if arguments[:1] == ["run-unbounded"]:
        arguments = ["run", *arguments[1:]]
        # A process started in the background ignores SIGINT; the budget's interrupt must reach mutmut.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    mutmut_cli.get_mutant_name = runtime_mutant_name
    # mutmut 3.7 reads pytest's private `Item._nodeid`, which pytest 9 no longer has. mutmut 3.8.1
    # reads `nodeid` but requires click>=8.4.2, and aws-sam-cli pins click==8.1.8.
    if not hasattr(Item, "_nodeid"):
        Item._nodeid = property(lambda item: item.nodeid)
    mutmut_cli.cli(arguments, standalone_mode=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
