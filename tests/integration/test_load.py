"""A short loopback load test: several keep-alive clients send a few thousand mixed good and bad
requests to start-api serving the built package. No transport error, no 5xx, every good answer
equal to scikit-learn's own prediction, every bad one the documented 4xx; the server's RSS
growth is reported and loosely bounded."""

from __future__ import annotations

import http.client
import json
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from sklearn.datasets import load_iris

from tests.integration.conftest import ApiProcess

SEED = 20_261_127
CLIENTS = 6
REQUESTS_PER_CLIENT = 500
WARM_UP_REQUESTS = 200
# The function refuses bodies over this (its own 413); the runner refuses bodies over Lambda's 6 MB.
FUNCTION_BODY_LIMIT = 6_000_000
RUNNER_BODY_LIMIT = 6 * 1024 * 1024
# Loose on purpose (about 1 MiB measured here): a leak of 5 KiB per request over 3,000 requests
# would show; noise does not.
MAX_RSS_GROWTH_KIB = 16 * 1024
JSON = {"Content-Type": "application/json"}


IRIS_ROWS = load_iris().data.tolist()


@dataclass(frozen=True)
class Case:
    """One request and the answer it must get: `expected` exactly, or with `expected` None any
    `{"error": ...}` body. A good request names its `rows` and its answer's `shape`."""

    kind: str
    method: str
    path: str
    body: bytes | None
    status: int
    expected: Any = None
    headers: tuple[tuple[str, str], ...] = tuple(JSON.items())
    rows: tuple[tuple[float, ...], ...] = ()
    shape: str = ""


class Oracle:
    """Expected answers: scikit-learn's predictions of the estimator the package was compiled from,
    computed for all the cases' rows at once (scikit-learn's per-call overhead is milliseconds)."""

    def __init__(self, estimator: Any, manifest: dict[str, Any]) -> None:
        self.estimator = estimator
        self.features: list[str] = [feature["name"] for feature in manifest["features"]]
        self.names = dict(zip(manifest["classes"], manifest["class_names"], strict=True))

    def answered(self, cases: list[Case]) -> list[Case]:
        rows = np.asarray([row for case in cases for row in case.rows])
        labels = [int(label) for label in self.estimator.predict(rows)]
        probabilities = self.estimator.predict_proba(rows).tolist()
        classes = [self.names[int(label)] for label in self.estimator.classes_]
        answered, start = [], 0
        for case in cases:
            end = start + len(case.rows)
            these = labels[start:end]
            expected = {
                "": case.expected,
                "single": {"prediction": these[0]} if these else None,
                "batch": {"predictions": these},
                "probabilities": {
                    "predictions": these,
                    "class_names": [self.names[label] for label in these],
                    "probabilities": [dict(zip(classes, row, strict=True)) for row in probabilities[start:end]],
                },
            }[case.shape]
            answered.append(replace(case, expected=expected))
            start = end
        return answered


def random_row(rng: random.Random) -> list[float]:
    if rng.random() < 0.5:
        return list(rng.choice(IRIS_ROWS))
    return [round(rng.uniform(0.0, 8.0), rng.choice([1, 2, 6, 15])) for _ in range(4)]


def make_cases(rng: random.Random, count: int, features: list[str]) -> list[Case]:
    def body(value: Any) -> bytes:
        return json.dumps(value).encode()

    def good(kind: str, path: str, sent: Any, rows: list[list[float]], shape: str) -> Case:
        return Case(kind, "POST", path, body(sent), 200, rows=tuple(map(tuple, rows)), shape=shape)

    def named(row: list[float]) -> dict[str, float]:
        return dict(zip(features, row, strict=True))

    cases = []
    for _ in range(count):
        draw = rng.random()
        row = random_row(rng)
        if draw < 0.30:
            cases.append(good("row", "/predict", {"features": row}, [row], "single"))
        elif draw < 0.45:
            cases.append(good("named row", "/predict", named(row), [row], "single"))
        elif draw < 0.60:
            rows = [random_row(rng) for _ in range(rng.randint(2, 40))]
            instances = [named(each) if rng.random() < 0.5 else each for each in rows]
            cases.append(good("batch", "/predict", {"instances": instances}, rows, "batch"))
        elif draw < 0.66:
            rows = [random_row(rng) for _ in range(rng.randint(1, 10))]
            cases.append(
                good("probabilities", "/predict?probabilities=true", {"instances": rows}, rows, "probabilities")
            )
        elif draw < 0.76:
            text = body({"features": row})
            cases.append(Case("malformed JSON", "POST", "/predict", text[: rng.randrange(1, len(text) - 1)], 400))
        elif draw < 0.88:
            wrong = rng.choice(["2.8", True, None, [1.0], {"x": 1}])
            bad_row: list[Any] = [*row]
            bad_row[rng.randrange(4)] = wrong
            shape = rng.choice([{"features": bad_row}, {"instances": [row, bad_row]}, {"features": row[:3]}])
            cases.append(Case("wrong type", "POST", "/predict", body(shape), 422))
        elif draw < 0.94:
            cases.append(Case("unknown route", "GET", f"/no-such-route-{rng.randrange(10**6)}", None, 404))
        elif draw < 0.97:
            cases.append(Case("wrong method", "GET", "/predict", None, 405))
        else:
            length, status = rng.choice([("-1", 400), ("abc", 400), ("9" * 50, 413)])
            headers = (*JSON.items(), ("Content-Length", length))
            cases.append(Case("bad Content-Length", "POST", "/predict", None, status, headers=headers))
    return cases


def oversized_cases() -> list[Case]:
    """Bodies over the function's limit (its own 413) and over Lambda's payload limit (the runner's)."""
    seed = json.dumps({"features": [6.1, 2.8, 4.7, 1.2]}).encode()
    return [
        Case("oversized", "POST", "/predict", seed + b" " * (FUNCTION_BODY_LIMIT + 1 - len(seed)), 413),
        Case("oversized", "POST", "/predict", seed + b" " * (RUNNER_BODY_LIMIT + 1 - len(seed)), 413),
    ]


@dataclass
class Outcome:
    kinds: Counter[str]
    wrong: list[str]
    transport_errors: list[str]
    server_errors: int


def run_client(url: str, cases: list[Case]) -> Outcome:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    outcome = Outcome(Counter(), [], [], 0)
    try:
        for case in cases:
            try:
                connection.putrequest(case.method, case.path)
                for name, value in case.headers:
                    connection.putheader(name, value)
                if case.body is not None:
                    connection.putheader("Content-Length", str(len(case.body)))
                connection.endheaders(case.body)
                response = connection.getresponse()
                status, answer = response.status, json.loads(response.read())
            except (OSError, http.client.HTTPException) as error:
                outcome.transport_errors.append(f"{case.kind} {case.path}: {error!r}")
                connection.close()
                continue
            outcome.kinds[case.kind] += 1
            outcome.server_errors += status >= 500
            if status != case.status or (
                answer != case.expected if case.expected is not None else "error" not in answer
            ):
                outcome.wrong.append(f"{case.kind} {case.path} {case.body!r:.200}: {status} {answer!r:.300}")
    finally:
        connection.close()
    return outcome


def rss_kib(pid: int) -> int:
    """The resident memory of the process and its children: the runner and the function's environment."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) + sum(rss_kib(int(child)) for child in children)
    raise AssertionError(f"no VmRSS for process {pid}")


def test_mixed_load_from_concurrent_clients(
    start_api_process: ApiProcess,
    training_estimator: Any,
    manifest: dict[str, Any],
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    record_property: Any,
) -> None:
    oracle = Oracle(training_estimator, manifest)
    features = [feature["name"] for feature in manifest["features"]]
    # The oversized bodies go in the warm-up: the allocator keeps the arenas their megabytes took
    # (about 20 MiB), which would hide a per-request leak in the growth measured afterwards.
    warm_up_cases = oracle.answered(make_cases(random.Random(SEED), WARM_UP_REQUESTS, features)) + oversized_cases()
    warm_up = run_client(start_api_process.url, warm_up_cases)
    assert (warm_up.wrong, warm_up.transport_errors, warm_up.server_errors) == ([], [], 0)
    assert warm_up.kinds["oversized"] == len(oversized_cases())
    work = [
        oracle.answered(make_cases(random.Random(SEED + 1 + client), REQUESTS_PER_CLIENT, features))
        for client in range(CLIENTS)
    ]
    rss_before = rss_kib(start_api_process.pid)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        outcomes = list(pool.map(run_client, [start_api_process.url] * CLIENTS, work))
    elapsed = time.monotonic() - started

    rss_after = rss_kib(start_api_process.pid)
    kinds = sum((outcome.kinds for outcome in outcomes), Counter())
    requests = sum(kinds.values())
    growth = rss_after - rss_before
    summary = (
        f"start-api load: {requests} requests from {CLIENTS} clients in {elapsed:.1f} s "
        f"({requests / elapsed:.0f}/s); server RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MiB "
        f"({growth:+d} KiB); {dict(sorted(kinds.items()))}"
    )
    with capsys.disabled():  # a line in pytest's output, not captured with the test's
        request.config.pluginmanager.getplugin("terminalreporter").write_line(summary)
    record_property("rss_growth_kib", growth)
    assert [error for outcome in outcomes for error in outcome.transport_errors] == []
    assert sum(outcome.server_errors for outcome in outcomes) == 0
    assert [wrong for outcome in outcomes for wrong in outcome.wrong] == []
    assert requests == CLIENTS * REQUESTS_PER_CLIENT
    assert growth < MAX_RSS_GROWTH_KIB
