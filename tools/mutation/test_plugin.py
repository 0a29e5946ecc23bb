"""`make mutate`'s tooling (tools/mutation/) against the way mutmut runs tests: pytest sessions in
one process, then in processes forked from it (one per mutant). Not part of the test suite: run
with `pytest tools/mutation --no-cov` after changing the tooling or upgrading mutmut or pytest.

Run in a child interpreter: importing tools/mutation/mutate.py sets the mutation run's environment
variables, which must not leak into this session."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from build import PROJECT_ROOT


def run_python(script: str, *arguments: str) -> str:
    """What `script` prints, run by this interpreter from the project root (its own process)."""
    ran = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return ran.stdout


SCHEMATHESIS_TEST = """
import schemathesis
from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
def ping() -> dict[str, bool]:
    return {"ok": True}


def test_schemathesis_reaches_the_app() -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    assert schema["/ping"]["GET"].Case().call().status_code == 200
"""

# What mutmut does: a session in this process, gc.freeze(), then a session in a forked child.
# SIGALRM ends a child that hangs; its exit status is then the signal's.
FORK_AFTER_A_SESSION = """
import gc, os, signal, sys
import pytest

arguments = [sys.argv[1], "-q", "-p", "no:cacheprovider", "-p", "tools.mutation.plugin"]
assert pytest.main(arguments) == 0
gc.freeze()
child = os.fork()
if child == 0:
    signal.alarm(60)
    os._exit(int(pytest.main(arguments)))
_, status = os.waitpid(child, 0)
print("child:", os.waitstatus_to_exitcode(status))
"""


def test_a_forked_session_runs_schemathesis_after_the_parent_did(tmp_path: Path) -> None:
    """schemathesis keeps one event-loop thread per process: without the plugin's stop at the end
    of each session, the fork inherits a portal whose thread it does not have, and waits for it
    (here until SIGALRM, exit -14)."""
    test_file = tmp_path / "test_schemathesis_in_a_fork.py"
    test_file.write_text(SCHEMATHESIS_TEST)

    printed = run_python(FORK_AFTER_A_SESSION, str(test_file))

    assert printed.splitlines()[-1] == "child: 0", printed


def test_the_mutation_run_loads_every_installed_pytest_plugin() -> None:
    """The mutation run turns pytest's plugin discovery off and registers the plugins itself: a plugin
    added to requirements-dev.txt and not to its list would be missing from every mutant's run."""
    installed = {
        entry_point.value
        for distribution in importlib.metadata.distributions()
        for entry_point in distribution.entry_points
        if entry_point.group == "pytest11"
    }

    listed = run_python("import tools.mutation.mutate as m; print(','.join(m.INSTALLED_PYTEST_PLUGINS))")

    assert set(listed.strip().split(",")) == installed


# One session as the mutation run starts it, in a process that has imported the plugins (as mutmut's
# has, by its first session) and where reading the installed distributions then fails: it prints the
# session's exit code and the plugins registered in it.
ONE_SESSION_WITHOUT_DISCOVERY = """
import importlib, importlib.metadata, json, sys
import tools.mutation.mutate as mutate
from mutmut.__main__ import PytestRunner

for name in (*mutate.INSTALLED_PYTEST_PLUGINS, mutate.MUTATION_PLUGIN):
    importlib.import_module(name)

registered = []

class Registered:
    def pytest_configure(self, config):
        registered.extend(name for name, _ in config.pluginmanager.list_name_plugin())

def no_discovery():
    raise AssertionError("pytest read the installed distributions to find a plugin")

importlib.metadata.distributions = no_discovery
exit_code = mutate.execute_pytest_with_plugins(PytestRunner(), [sys.argv[1], "-q"], plugins=[Registered()])
print(json.dumps({"exit_code": exit_code, "registered": registered}))
"""


def test_a_mutants_session_registers_the_plugins_without_looking_for_them(tmp_path: Path) -> None:
    """Each session of the run would otherwise read every installed distribution's metadata once per
    plugin it names (PYTEST_PLUGINS, `-p`): the plugins come as modules, and every one is there."""
    test_file = tmp_path / "test_nothing.py"
    test_file.write_text("def test_nothing() -> None:\n    pass\n")

    printed = json.loads(run_python(ONE_SESSION_WITHOUT_DISCOVERY, str(test_file)).splitlines()[-1])

    assert printed["exit_code"] == 0
    assert {"tools.mutation.plugin", "_hypothesis_pytestplugin", "xdist.plugin"} <= set(printed["registered"])


# Runs the mutation run's test runner over 20 named tests with mutmut's own replaced by one that
# records each session's tests and fails a session that holds the test named in argv[1].
TWO_SESSIONS = """
import json, sys
import tools.mutation.mutate as mutate

sessions = []

def one_session(runner, *, mutant_name, tests):
    sessions.append(list(tests))
    return 1 if sys.argv[1] in tests else 0

mutate.mutmut_run_tests = one_session
tests = [f"test_{index}" for index in range(20)]
verdict = mutate.run_mutant_tests_in_two_sessions(None, mutant_name="m__mutmut_1", tests=tests)
print(json.dumps({"verdict": verdict, "sessions": sessions}))
"""


@pytest.mark.parametrize(
    ("failing", "sessions", "verdict"),
    [
        ("test_0", [8], 1),  # killed in the first session: the rest never runs
        ("test_7", [8], 1),
        ("test_8", [8, 12], 1),  # killed in the second
        ("test_19", [8, 12], 1),
        ("none", [8, 12], 0),  # survived: every test ran, once
    ],
)
def test_a_mutants_tests_run_fastest_first_in_two_sessions(failing: str, sessions: list[int], verdict: int) -> None:
    result = run_mutant_tests(failing)

    assert result["verdict"] == verdict
    assert [len(session) for session in result["sessions"]] == sessions
    in_order = [f"test_{index}" for index in range(20)]
    assert [test for session in result["sessions"] for test in session] == in_order[: sum(sessions)]


def run_mutant_tests(failing: str) -> dict[str, Any]:
    printed = run_python(TWO_SESSIONS, failing)

    result: dict[str, Any] = json.loads(printed)
    return result


# Stands in for mutated functions: each fixture records a call as mutmut's trampolines do.
FIXTURE_CALLS_TEST = """
import mutmut
import pytest


@pytest.fixture(scope="module")
def probes():
    mutmut._stats.add("build.probes")


@pytest.fixture(scope="session")
def package():
    mutmut._stats.add("build.bake")


def test_first(probes, package):
    mutmut._stats.add("serving.first")


def test_second(probes, package):
    pass
"""

# mutmut's own stats collector, as PytestRunner.run_stats registers it: what each test called.
RECORD_CALLS = """
import json, os, sys
import mutmut
import pytest

calls = {}

class StatsCollector:
    def pytest_runtest_teardown(self, item, nextitem):
        calls[item.name] = sorted(mutmut._stats)
        mutmut._stats.clear()

os.environ["MUTANT_UNDER_TEST"] = "stats"
sys.path.insert(0, os.getcwd())
os.chdir(os.path.dirname(sys.argv[1]))  # where the plugin writes its record of the session fixtures
pytest.main([sys.argv[1], "-q", "-p", "no:cacheprovider", "-p", "tools.mutation.plugin"], plugins=[StatsCollector()])
print(json.dumps(calls))
"""


def test_a_module_fixtures_calls_count_for_every_test_that_uses_it(tmp_path: Path) -> None:
    """What a module-scoped fixture calls is credited to each test using it, not to the first
    alone; a session fixture's calls stay with the test that set it up."""
    test_file = tmp_path / "test_fixture_calls.py"
    test_file.write_text(FIXTURE_CALLS_TEST)

    printed = run_python(RECORD_CALLS, str(test_file))

    assert json.loads(printed.splitlines()[-1]) == {
        "test_first": ["build.bake", "build.probes", "serving.first"],
        "test_second": ["build.probes"],
    }


# A session fixture (with a nested one) used by two of three tests, as the stats run records it.
SESSION_FIXTURES_TEST = """
import time
import pytest


@pytest.fixture(scope="session")
def training():
    time.sleep(0.2)


@pytest.fixture(scope="session")
def package(training):
    time.sleep(0.3)


def test_first(package):
    pass


def test_second(package):
    pass


def test_alone():
    pass
"""

RECORD_SESSION_FIXTURES = """
import json, os, sys
import pytest
from tools.mutation.plugin import SESSION_FIXTURES_FILE

os.environ["MUTANT_UNDER_TEST"] = "stats"
os.chdir(sys.argv[2])
pytest.main([sys.argv[1], "-q", "-p", "no:cacheprovider", "-p", "tools.mutation.plugin"])
print(open(SESSION_FIXTURES_FILE).read())
"""


def test_the_stats_run_records_what_each_session_fixture_costs_and_which_tests_use_it(tmp_path: Path) -> None:
    test_file = tmp_path / "test_session_fixtures.py"
    test_file.write_text(SESSION_FIXTURES_TEST)

    record = json.loads(run_python(RECORD_SESSION_FIXTURES, str(test_file), str(tmp_path)).splitlines()[-1])

    package, training = (f"test_session_fixtures.py::{name}[0]" for name in ("package", "training"))
    assert 0.3 <= record["cost"][package] < 0.45  # its own setup, the nested fixture's left out
    assert 0.2 <= record["cost"][training] < 0.3
    nodeid = "test_session_fixtures.py::{}".format
    assert sorted(record["fixtures"][nodeid("test_first")]) == [package, training]
    assert sorted(record["fixtures"][nodeid("test_second")]) == [package, training]
    assert record["fixtures"][nodeid("test_alone")] == []
    assert 0.5 <= record["setup_in_test"][nodeid("test_first")] < 0.7
    assert record["setup_in_test"][nodeid("test_second")] == 0


# Five tests: api_* need the package (1 s to set up, counted in api_first's recorded duration).
CHEAPEST_FIRST = """
import json
import mutmut
import tools.mutation.mutate as mutate

mutmut.duration_by_test.update(api_first=1.02, api_second=0.01, api_third=0.03, unit_slow=0.2, unit_fast=0.05)
mutate.SESSION_FIXTURES = {
    "cost": {"package": 1.0},
    "fixtures": {"api_first": ["package"], "api_second": ["package"], "api_third": ["package"]},
    "setup_in_test": {"api_first": 1.0},
}
print(json.dumps(mutate.cheapest_first(["api_second", "api_first", "api_third", "unit_fast", "unit_slow"])))
"""


def test_a_mutants_tests_run_cheapest_first_with_their_session_fixtures_setup() -> None:
    """mutmut's order would be the recorded durations: api_second, unit_fast, api_third..."""
    ordered = json.loads(run_python(CHEAPEST_FIRST))

    assert ordered == ["unit_fast", "unit_slow", "api_second", "api_first", "api_third"]


# Four mutants as mutmut collects them (killed, not checked, survived, interrupted), filtered for a
# pattern and one of them named in full.
GO_ON = """
import json
import tools.mutation.mutate as mutate

mutants = [(None, f"m.x_f__mutmut_{n}", code) for n, code in [(1, 1), (2, None), (3, 0), (4, 2)]]
mutate.mutmut_collect_mutants = lambda *, mutant_names: (mutants, {})
kept, _ = mutate.collect_mutants_without_verdicts_for_patterns(mutant_names=["m.*", "m.x_f__mutmut_3"])
print(json.dumps([name for _, name, _ in kept]))
"""


def test_a_pattern_goes_on_with_its_mutants_without_a_verdict_and_a_named_mutant_is_checked_again() -> None:
    assert json.loads(run_python(GO_ON)) == ["m.x_f__mutmut_2", "m.x_f__mutmut_3", "m.x_f__mutmut_4"]


# The table of two modules, one of them below the target, as docs/mutation.md's section.
AUDIT_SECTION = """
from collections import Counter
import tools.mutation.mutate as mutate

counts = {"met.py": Counter(killed=9, survived=1), "below.py": Counter(killed=1, survived=1, **{"not checked": 3})}
print(mutate.audit_section(counts, run_seconds=125.0))
"""


def test_the_audit_section_holds_the_table_with_its_date_load_and_verdict() -> None:
    section = run_python(AUDIT_SECTION).strip().splitlines()

    assert section[0].startswith("Written by `tools/mutation/mutate.py` on ")
    assert "load average " in section[0]
    assert "the last run took 2 min" in section[0]
    assert section[0].endswith("12 of 15 mutants checked; some module is below the 90% target.")
    assert section[2] == "```text"
    assert section[-1] == "```"
    below, met = section[4].split(), section[5].split()
    assert (below[0], below[1], below[-1]) == ("below.py", "5", "50.0%")
    assert (met[0], met[1], met[-1]) == ("met.py", "10", "90.0%")
