"""The pytest plugin `make mutate` loads into mutmut's test runs (pyproject.toml's [tool.mutmut]
passes `-p tools.mutation.plugin`); the test suite itself knows nothing of it.

mutmut runs pytest many times in one process, then once per mutant in a process forked from it.
What a person reading a failure needs and a mutant's verdict does not, and what does not survive
a fork, is adjusted here.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import mutmut
import pytest
from _pytest.fixtures import FixtureDef, SubRequest
from _pytest.nodes import Item

# The mutated functions each fixture's setup called, while mutmut records which tests call what.
FIXTURE_CALLS: dict[FixtureDef[Any], set[str]] = {}
# In MUTANT_UNDER_TEST's value while a mutant is switched on (mutmut's names: `module.x_function__mutmut_3`).
MUTANT_NAME_MARK = "__mutmut_"
# Fixtures shared more widely than this are not counted as their users' calls (below).
SHARED_SCOPES = frozenset({"session"})
# What the session-wide fixtures cost, recorded with mutmut's stats in mutants/ (where mutmut runs
# the tests): mutate.py orders a mutant's tests by it (cheapest_first).
SESSION_FIXTURES_FILE = "mutation-session-fixtures.json"
# Recorded while mutmut records which tests call what: each session fixture's own setup time (its
# nested session fixtures' left out), the session fixtures each test uses, and how much of a test's
# time (mutmut's duration) went to setting up session fixtures for every later test too.
SESSION_FIXTURE_COST: dict[str, float] = {}
TEST_SESSION_FIXTURES: dict[str, list[str]] = {}
SESSION_SETUP_IN_TEST: dict[str, float] = {}
# The time spent in the session fixtures being set up, innermost last; the total since the last test.
NESTED_SETUP: list[float] = []
setup_since_last_test = 0.0


def pytest_configure(config: pytest.Config) -> None:
    """hypothesis shrinks a failing example to the smallest one, re-running the test many times:
    a mutant that breaks a fuzzed handler could shrink past its timeout. Examples are generated
    as the suite's profile says; a failure stops at the first one found."""
    # Imported here, once pytest has marked its plugins (hypothesis is one) for assertion rewriting.
    from hypothesis import Phase, settings

    # No example database either: one mutant's failing examples must not be replayed for the next.
    settings.register_profile(
        "mutate",
        parent=settings.default,
        phases=[Phase.explicit, Phase.generate],
        report_multiple_bugs=False,
        database=None,
    )
    settings.load_profile("mutate")
    # A mutant's verdict needs the failure, not its traceback: pytest's native one (mutmut's
    # --tb=native) reads the source of every frame of it, as much CPU as a short test takes.
    # mutmut throws a mutant's output away; its clean and stats runs keep their tracebacks.
    if MUTANT_NAME_MARK in os.environ.get("MUTANT_UNDER_TEST", ""):
        config.option.tbstyle = "line"


def recording_calls() -> bool:
    return os.environ.get("MUTANT_UNDER_TEST") == "stats"


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: FixtureDef[Any], request: SubRequest) -> Any:
    """mutmut credits a call to the test during which it happens, so what a module-scoped fixture
    computes once (a fitted model's probes, a compiled model) counts for the first test that uses
    it only, and a mutant there is never tried on the others, which may be the ones that check it.
    The calls made while a fixture is set up are recorded here and credited to every test that
    uses the fixture (pytest_runtest_teardown). Session-wide fixtures (the baked Iris package every
    API test uses) are left out: they would make each of hundreds of API tests a test of the build,
    and a surviving build mutant would run them all."""
    if not recording_calls():
        return (yield)
    if fixturedef.scope in SHARED_SCOPES:
        return (yield from timed_session_setup(fixturedef, request.param_index))
    outer = mutmut._stats
    mutmut._stats = set()
    try:
        return (yield)
    finally:
        FIXTURE_CALLS.setdefault(fixturedef, set()).update(mutmut._stats)
        mutmut._stats = outer | mutmut._stats


def session_fixture_key(fixturedef: FixtureDef[Any], param_index: int) -> str:
    return f"{fixturedef.baseid}::{fixturedef.argname}[{param_index}]"


def timed_session_setup(fixturedef: FixtureDef[Any], param_index: int) -> Any:
    """A session fixture's setup, timed without the session fixtures it sets up first."""
    global setup_since_last_test
    NESTED_SETUP.append(0.0)
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        spent = time.perf_counter() - started
        inner = NESTED_SETUP.pop()
        SESSION_FIXTURE_COST[session_fixture_key(fixturedef, param_index)] = spent - inner
        if NESTED_SETUP:
            NESTED_SETUP[-1] += spent
        else:
            setup_since_last_test += spent


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: Item, nextitem: Item | None) -> None:
    """Before mutmut reads a test's calls (its own pytest_runtest_teardown): add those of the
    fixtures it uses, whether they were set up for it or for an earlier test. Also records the
    session fixtures the test uses, and the time it spent setting them up (cheapest_first)."""
    global setup_since_last_test
    if not recording_calls():
        return
    session_fixtures = []
    callspec = getattr(item, "callspec", None)
    for name in getattr(item, "fixturenames", ()):
        fixturedefs = item._fixtureinfo.name2fixturedefs.get(name, ())  # type: ignore[attr-defined]
        for fixturedef in fixturedefs:
            mutmut._stats.update(FIXTURE_CALLS.get(fixturedef, ()))
        if fixturedefs and fixturedefs[-1].scope in SHARED_SCOPES:
            index = callspec.indices.get(name, 0) if callspec is not None else 0
            session_fixtures.append(session_fixture_key(fixturedefs[-1], index))
    TEST_SESSION_FIXTURES[item.nodeid] = session_fixtures
    SESSION_SETUP_IN_TEST[item.nodeid] = setup_since_last_test
    setup_since_last_test = 0.0


def save_session_fixtures() -> None:
    """Adds this session's records to those of earlier ones (mutmut records new tests alone)."""
    path = Path(SESSION_FIXTURES_FILE)
    record = json.loads(path.read_text()) if path.exists() else {"cost": {}, "fixtures": {}, "setup_in_test": {}}
    record["cost"].update(SESSION_FIXTURE_COST)
    record["fixtures"].update(TEST_SESSION_FIXTURES)
    record["setup_in_test"].update(SESSION_SETUP_IN_TEST)
    path.write_text(json.dumps(record))


def pytest_sessionstart(session: pytest.Session) -> None:
    """The function's logger keeps the stdout of the session that imported it, closed when that
    session ended: each session gets its own."""
    observability = sys.modules.get("serving.observability")
    if observability is not None:
        observability.logger.registered_handler.stream = sys.stdout


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """schemathesis serves ASGI apps from one event-loop thread per process, kept in its module
    globals (schemathesis.python.asgi, private, pinned in requirements-dev.txt). A forked child
    inherits the globals but not the thread, and its first schemathesis request waited for that
    thread until the mutant's timeout. Stopping the thread (and the app lifespans it serves) at the
    end of every session leaves none to inherit; a child's schemathesis test starts its own."""
    asgi = sys.modules.get("schemathesis.python.asgi")
    if asgi is not None:
        asgi._shutdown()
    if recording_calls():
        save_session_fixtures()
