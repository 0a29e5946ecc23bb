"""`make mutate`: mutation testing of the critical modules with mutmut, then a score per module.

mutmut names a mutant after its file's path (functions/predict/serving/model.py gives
`functions.predict.serving.model`) and switches it on only where the running function's
`__module__` equals that name. The Lambda roots are on sys.path (the package's layout), so the
code runs as `serving.model` and `hook`: this wrapper strips the roots from mutmut's names and
then hands its arguments to mutmut's own command line. What is mutated and which tests may kill
it is configured in pyproject.toml ([tool.mutmut]); tools/mutation/plugin.py is loaded into
mutmut's pytest runs; docs/mutation.md says how to read the results.

    python tools/mutation/mutate.py run [MUTANT_GLOB...]   mutate for at most MUTATE_MINUTES, then score
    python tools/mutation/mutate.py score                  the score of the results so far
    python tools/mutation/mutate.py score --no-write       the same, without rewriting docs/mutation.md
    python tools/mutation/mutate.py show NAME              any other mutmut command (show, apply, results)

An equivalent mutant (one that cannot change what the code does) is not made at all: its line
carries mutmut's `# pragma: no mutate`, with the reason in a comment above it, so the mark moves
with the line.

mutmut keeps every verdict in mutants/ until the mutated function or its tests change, so each
run goes on where the last one stopped: `run` stops after its time budget and scores what has
been checked (the rest is counted as "not checked"). `run` and `score` also rewrite the table in
docs/mutation.md (its "Latest audit" section, between bench's generated-section markers), so the
figures there are never copied by hand.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Run as a script: the project root goes first on sys.path, as for pytest; mutmut then swaps it
# for its copy of the project in mutants/.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# mutmut forks a process per mutant from one that has run scikit-learn: an OpenMP thread pool
# (HistGradientBoosting's) does not survive a fork, and the child hangs on its lock. One thread
# per process never starts the pool. Set before anything imports scikit-learn.
os.environ["OMP_NUM_THREADS"] = "1"
# pytest finds plugins by reading every installed distribution's metadata, and a plugin named in
# PYTEST_PLUGINS or `-p` makes it read them again, once per name: a fifth of a short session, with
# aws-sam-cli's dependencies installed. The mutation run starts thousands of sessions, so it turns
# discovery off and registers the plugins' modules itself (execute_pytest_with_plugins): those that
# requirements-dev.txt installs (tools/mutation/test_plugin.py checks that none is missing) and its own.
os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"

import mutmut
import mutmut.__main__ as mutmut_cli
from _pytest.nodes import Item
from mutmut.__main__ import PytestRunner
from mutmut.configuration import Config
from mutmut.mutation import file_mutation
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.trampoline_templates import mangle_function_name
from mutmut.utils.format_utils import get_mutant_name

from tools.mutation.plugin import SESSION_FIXTURES_FILE

# The plugins requirements-dev.txt installs, registered by execute_pytest_with_plugins.
INSTALLED_PYTEST_PLUGINS = (
    "_hypothesis_pytestplugin",
    "anyio.pytest_plugin",
    "platformdirs.pytest_plugin",
    "pytest_cov.plugin",
    "schemathesis.pytest.plugin",
    "xdist.plugin",
    "xdist.looponfail",
)
# pyproject.toml's [tool.mutmut] names it with `-p` too: pytest skips a name already registered.
MUTATION_PLUGIN = "tools.mutation.plugin"

# mutmut's own, before main() replaces them with run_mutant_tests_in_two_sessions and execute_pytest_with_plugins.
mutmut_run_tests = PytestRunner.run_tests
mutmut_execute_pytest = PytestRunner.execute_pytest
mutmut_collect_mutants = mutmut_cli.collect_source_file_mutation_data
mutmut_function_hashes = file_mutation.compute_function_hashes
PRAGMA = "pragma: no mutate"

# The directories Lambda puts on sys.path, as mutmut spells them in a mutant's name.
LAMBDA_ROOTS = ("functions.predict.", "functions.pretraffic.")
# A run's budget: under 30 minutes with mutant generation, the test passes and the score.
DEFAULT_MINUTES = 25.0
# How many of a mutant's fastest tests run in its first pytest session.
FIRST_SESSION_TESTS = 8
# What a test file adds to a session that collects it, in seconds of CPU (a forked session that
# collects one of the engines' or the API's test files: 0.15-0.25 s on 2 busy cores, the session's
# start included).
FILE_COST = 0.05
# The share of scored mutants a module's tests must kill (issue 13).
TARGET_SCORE = 0.90
# Statuses that are not a verdict on the tests: excluded from the score, listed in the table.
UNSCORED = frozenset({"skipped", "not checked", "check was interrupted by user"})
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The generated section of docs/mutation.md that holds the latest table (bench/report.py's SECTION_DOCUMENTS).
AUDIT_SECTION = "mutation-audit"


def runtime_mutant_name(relative_source_path: Path, mutant_method_name: str) -> str:
    """mutmut's name for a mutant, with the module named as the function imports it."""
    name = get_mutant_name(relative_source_path, mutant_method_name)
    for root in LAMBDA_ROOTS:
        name = name.removeprefix(root)
    return name


def module_statuses() -> dict[str, Counter[str]]:
    """The last run's mutant statuses, counted per mutated file."""
    Config.ensure_loaded()
    counts: dict[str, Counter[str]] = {}
    for path in mutmut_cli.walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        if data.exit_code_by_key:
            counts[str(path)] = Counter(mutmut_cli.status_by_exit_code[code] for code in data.exit_code_by_key.values())
    return counts


def score_table(counts: dict[str, Counter[str]]) -> tuple[list[str], bool]:
    """One line per module: mutants, each status, and the killed share of the scored mutants."""
    columns = ["killed", "survived", "timeout", "no tests", "suspicious", "segfault", "not checked"]
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


def audit_section(counts: dict[str, Counter[str]], run_seconds: float | None) -> str:
    """docs/mutation.md's "Latest audit": when and on what load the table was read, how much of it
    is checked, and the table."""
    lines, all_met = score_table(counts)
    total = sum(statuses.total() for statuses in counts.values())
    unchecked = sum(count for statuses in counts.values() for status, count in statuses.items() if status in UNSCORED)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    ran = f"; the last run took {run_seconds / 60:.0f} min" if run_seconds is not None else ""
    verdict = "every module checked meets" if all_met else "some module is below"
    header = (
        f"Written by `tools/mutation/mutate.py` on {time.strftime('%Y-%m-%d %H:%M %Z')}, load average {load}"
        f" on {os.cpu_count()} cores{ran}. {total - unchecked:,} of {total:,} mutants checked; {verdict}"
        f" the {TARGET_SCORE:.0%} target."
    )
    return "\n".join([header, "", "```text", *lines, "```"])


def report(*, write: bool = True, run_seconds: float | None = None) -> int:
    counts = module_statuses()
    lines, all_met = score_table(counts)
    sys.stdout.write("\n".join(lines) + "\n")
    if not all_met:
        sys.stdout.write(
            f"below the {TARGET_SCORE:.0%} target: python tools/mutation/mutate.py results lists the survivors\n"
        )
    if write:
        # Imported here: the bench's reporting is needed only to write the section, never in mutmut's runs.
        from bench.report import update_documents

        update_documents(PROJECT_ROOT, {AUDIT_SECTION: audit_section(counts, run_seconds)})
    return 0 if all_met else 1


def execute_pytest_with_plugins(runner: PytestRunner, params: list[str], **kwargs: Any) -> int:
    """mutmut's PytestRunner.execute_pytest, with the plugins handed to pytest as modules (imported
    once, in the process mutmut forks from): pytest registers them without looking for them, where
    each name in PYTEST_PLUGINS or `-p` costs a scan of every installed distribution."""
    modules = [importlib.import_module(name) for name in (*INSTALLED_PYTEST_PLUGINS, MUTATION_PLUGIN)]
    return mutmut_execute_pytest(runner, params, plugins=[*kwargs.pop("plugins", ()), *modules], **kwargs)


def session_fixtures() -> dict[str, dict[str, Any]]:
    """What the plugin recorded of the session fixtures with mutmut's stats (empty before it has),
    read once in the process mutmut forks from (by its clean run) and kept for its children."""
    global SESSION_FIXTURES
    if SESSION_FIXTURES is None:
        path = PROJECT_ROOT / "mutants" / SESSION_FIXTURES_FILE
        SESSION_FIXTURES = json.loads(path.read_text()) if path.exists() else {}
    return SESSION_FIXTURES


SESSION_FIXTURES: dict[str, dict[str, Any]] | None = None


def cheapest_first(tests: list[str]) -> list[str]:
    """A mutant's tests in the order of what each adds to its session's time. mutmut orders them by
    the duration it recorded, where a session-wide fixture's setup (baking the Iris package, about
    half a second of CPU) counts for the first test that used it only: every later user of the
    fixture looks free, and a mutant's fastest tests could all be API tests that bake the package
    again in the mutant's session, before a unit test that kills the mutant in milliseconds. Here a
    test costs its own time plus the setup of the session fixtures it uses that no earlier test has
    set up, and FILE_COST if its file is not collected yet: the tests that need no new fixture come
    first, a fixture's users together, from as few files as it takes. The same tests run, so the
    verdict is the same."""
    record = session_fixtures()
    if not record:
        return tests
    cost, fixtures, setup_in_test = record["cost"], record["fixtures"], record["setup_in_test"]
    # Tests grouped by their file and the session fixtures they use, each group's cheapest last.
    groups: dict[tuple[str, frozenset[str]], list[tuple[float, str]]] = {}
    for test in tests:
        own = max(0.0, mutmut.duration_by_test.get(test, 0.0) - setup_in_test.get(test, 0.0))
        groups.setdefault((test.partition("::")[0], frozenset(fixtures.get(test, ()))), []).append((own, test))
    for members in groups.values():
        members.sort(reverse=True)
    ordered: list[str] = []
    set_up: set[str] = set()
    collected: set[str] = set()

    def added_cost(group: tuple[str, frozenset[str]]) -> float:
        file, uses = group
        setup = sum(float(cost.get(fixture, 0.0)) for fixture in uses - set_up)
        return groups[group][-1][0] + setup + (0.0 if file in collected else FILE_COST)

    # Only the first session's tests are picked so (each pick weighs every group); the rest, run
    # only when those all pass, follow in mutmut's order.
    while groups and len(ordered) < FIRST_SESSION_TESTS:
        cheapest = min(groups, key=added_cost)
        ordered.append(groups[cheapest].pop()[1])
        collected.add(cheapest[0])
        set_up |= cheapest[1]
        if not groups[cheapest]:
            del groups[cheapest]
    first = set(ordered)
    return ordered + [test for test in tests if test not in first]


def run_mutant_tests_in_two_sessions(runner: PytestRunner, *, mutant_name: str | None, tests: Iterable[str]) -> int:
    """mutmut's PytestRunner.run_tests, with a mutant's tests (fastest first) split in two pytest
    sessions: the FIRST_SESSION_TESTS fastest, then the rest only if those all passed. A session
    collects every test file it is given before its first test runs, and a function of the
    request path is called by hundreds of tests in dozens of files; most mutants fail one of
    the first few, so they no longer pay for collecting the rest. The verdict is unchanged:
    killed if any test fails, survived if all pass."""
    ordered = list(tests)
    if mutant_name is None:
        # The clean run, in the process mutmut forks from: the record is read here, once.
        session_fixtures()
        return mutmut_run_tests(runner, mutant_name=mutant_name, tests=ordered)
    ordered = cheapest_first(ordered)
    if len(ordered) <= FIRST_SESSION_TESTS:
        return mutmut_run_tests(runner, mutant_name=mutant_name, tests=ordered)
    first = mutmut_run_tests(runner, mutant_name=mutant_name, tests=ordered[:FIRST_SESSION_TESTS])
    if first != 0:
        return first
    return mutmut_run_tests(runner, mutant_name=mutant_name, tests=ordered[FIRST_SESSION_TESTS:])


def function_hashes_with_pragmas(source_code: str, accept: Any = None) -> dict[str, str]:
    """mutmut's hash of each function (of its AST), changed by the function's `# pragma: no mutate`
    lines too. mutmut keeps a function's verdicts, by mutant number, while its hash is the same; a
    pragma leaves the AST as it was but removes mutants, so the numbers after it named other
    mutants and kept their verdicts (a survivor's, a kill's). Now the function is checked again."""
    hashes: dict[str, str] = mutmut_function_hashes(source_code, accept)
    try:
        tree = ast.parse(source_code)
    except SyntaxError:
        return hashes
    lines = source_code.splitlines()

    def visit(statements: list[ast.stmt], class_name: str = "") -> None:
        for node in statements:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                key = mangle_function_name(name=node.name, class_name=class_name or None)
                marks = [line.strip() for line in lines[node.lineno - 1 : node.end_lineno] if PRAGMA in line]
                if key in hashes and marks:
                    hashes[key] = hashlib.sha256(f"{hashes[key]}{marks}".encode()).hexdigest()[:12]
            elif isinstance(node, ast.ClassDef):
                visit(node.body, f"{class_name}.{node.name}" if class_name else node.name)

    visit(tree.body)
    return hashes


def collect_mutants_without_verdicts_for_patterns(
    *, mutant_names: tuple[str, ...] | list[str]
) -> tuple[list[tuple[SourceFileMutationData, str, int | None]], dict[str, SourceFileMutationData]]:
    """mutmut's collect_source_file_mutation_data, without the mutants a pattern (`serving.model.*`)
    matches that have a verdict already: mutmut checks every mutant it is given by name or pattern
    again, where a run of a module stopped by its budget should go on where it stopped. A mutant
    named in full is checked again. Called once the mutants are made, so a function changed since
    the last run is matched by its new mutants."""
    mutants, data_by_path = mutmut_collect_mutants(mutant_names=mutant_names)
    named = {name for name in mutant_names if "*" not in name}
    unchecked = [
        (data, name, result)
        for data, name, result in mutants
        if name in named or mutmut_cli.status_by_exit_code[result] in UNSCORED
    ]
    return unchecked, data_by_path


def run(mutant_globs: list[str], minutes: float) -> int:
    """mutmut run in a child process, interrupted (as Ctrl-C would) when the budget is spent."""
    command = [sys.executable, __file__, "run-unbounded", *mutant_globs]
    started = time.monotonic()
    with subprocess.Popen(command) as mutmut_run:
        try:
            mutmut_run.wait(timeout=minutes * 60)
        except subprocess.TimeoutExpired:
            sys.stdout.write(f"\nstopping after {minutes:g} minutes; `make mutate` again goes on from here\n")
            mutmut_run.send_signal(signal.SIGINT)
            mutmut_run.wait()
    return report(run_seconds=time.monotonic() - started)


def main(arguments: list[str]) -> int:
    if arguments[:1] == ["run"]:
        return run(arguments[1:], float(os.environ.get("MUTATE_MINUTES", DEFAULT_MINUTES)))
    if arguments[:1] == ["score"] and set(arguments[1:]) <= {"--no-write"}:
        return report(write="--no-write" not in arguments)
    if arguments[:1] == ["run-unbounded"]:
        arguments = ["run", *arguments[1:]]
        # A process started in the background ignores SIGINT; the budget's interrupt must reach mutmut.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # mutmut's run looks the name function up in its own module: replaced there.
    setattr(mutmut_cli, "get_mutant_name", runtime_mutant_name)  # noqa: B010
    # mutmut 3.7 reads pytest's private `Item._nodeid`, which pytest 9 no longer has. mutmut 3.8.1
    # reads `nodeid` but requires click>=8.4.2, and aws-sam-cli pins click==8.1.8.
    if not hasattr(Item, "_nodeid"):
        setattr(Item, "_nodeid", property(lambda item: item.nodeid))  # noqa: B010
    setattr(PytestRunner, "run_tests", run_mutant_tests_in_two_sessions)  # noqa: B010
    setattr(mutmut_cli, "collect_source_file_mutation_data", collect_mutants_without_verdicts_for_patterns)  # noqa: B010
    setattr(file_mutation, "compute_function_hashes", function_hashes_with_pragmas)  # noqa: B010
    setattr(PytestRunner, "execute_pytest", execute_pytest_with_plugins)  # noqa: B010
    mutmut_cli.cli(arguments, standalone_mode=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
