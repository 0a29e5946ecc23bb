"""The pytest plugin `make mutate` loads into mutmut's test runs (pyproject.toml's [tool.mutmut]
passes `-p tools.mutation.plugin`); the test suite itself knows nothing of it.

mutmut runs pytest many times in one process, then once per mutant in a process forked from it.
What a person reading a failure needs and a mutant's verdict does not, and what does not survive
a fork, is adjusted here.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import mutmut
import pytest
from _pytest.fixtures import FixtureDef, SubRequest
from _pytest.nodes import Item

# The mutated functions each fixture's setup called, while mutmut records which tests call what.
FIXTURE_CALLS: dict[FixtureDef[Any], set[str]] = {}
# Fixtures shared more widely than this are not counted as their users' calls (below).
SHARED_SCOPES = frozenset({"session"})


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
    if not recording_calls() or fixturedef.scope in SHARED_SCOPES:
        return (yield)
    outer = mutmut._stats
    mutmut._stats = set()
    try:
        return (yield)
    finally:
        FIXTURE_CALLS.setdefault(fixturedef, set()).update(mutmut._stats)
        mutmut._stats = outer | mutmut._stats


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: Item, nextitem: Item | None) -> None:
    """Before mutmut reads a test's calls (its own pytest_runtest_teardown): add those of the
    fixtures it uses, whether they were set up for it or for an earlier test."""
    if not recording_calls():
        return
    for name in getattr(item, "fixturenames", ()):
        for fixturedef in item._fixtureinfo.name2fixturedefs.get(name, ()):  # type: ignore[attr-defined]
            mutmut._stats.update(FIXTURE_CALLS.get(fixturedef, ()))


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
