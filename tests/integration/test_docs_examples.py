"""Every curl example and the Python client example in the README and docs/ run against a built
package served by local/lambda_local.py start-api, answering what the documents show. Examples under
a `# MODEL=models/<spec>.toml` line run against that model's package, built as sam build would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from filelock import FileLock

from build import MODEL_VARIABLE
from build.train import MODEL_CACHE_DIR
from local.lambda_local import DEFAULT_PACKAGE, PROJECT_ROOT
from tests.docs_examples import DEFAULT_MODEL, LOCAL_URL, Example, curl_examples, python_examples
from tests.integration.conftest import serving

BUILD_TIMEOUT_S = 600
# The other models' packages, kept in the build's cache between runs (`make clean` removes them): a
# package is reused while build/inputs.py's record of it (a digest of every input and of the spec)
# matches, the check `make build` makes, and built again otherwise. Hidden: no spec is named so.
EXAMPLE_PACKAGES = MODEL_CACHE_DIR / ".packages"


@pytest.fixture(scope="session")
def example_servers(start_api: str) -> Iterator[dict[str, str]]:
    """The base URL serving each model the examples name: the built package for the default one,
    a package built from its spec (as sam build would) for each other."""
    urls = {DEFAULT_MODEL: start_api}
    with ExitStack() as servers:
        for model in sorted({example.model for example in curl_examples()} - {DEFAULT_MODEL}):
            urls[model] = servers.enter_context(serving(current_package(model))).url
        yield urls


def current_package(model: str) -> Path:
    """`model`'s package built from its spec as sam build would (build/inputs.py, which records its
    inputs), unless the one kept from an earlier run was built from the same inputs. The workers
    share it: the first to get here builds it while the others wait on its lock."""
    package = EXAMPLE_PACKAGES / Path(model).stem / DEFAULT_PACKAGE.name
    package.parent.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, MODEL_VARIABLE: model}

    def inputs(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "build.inputs", command, "--package", str(package)],
            cwd=PROJECT_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )

    with FileLock(package.parent / "build.lock"):
        if inputs("check").returncode != 0:
            built = inputs("build")
            assert built.returncode == 0, f"building {model} failed:\n{built.stdout[-2000:]}{built.stderr[-2000:]}"
    return package


def test_the_readme_opens_with_the_seed_contract() -> None:
    first = curl_examples()[0]

    assert first.document == "README.md"
    assert first.model == DEFAULT_MODEL
    assert '{"features": [6.1, 2.8, 4.7, 1.2]}' in first.code
    assert first.shown == '{"prediction":1}'


@pytest.mark.parametrize("example", curl_examples(), ids=lambda example: example.id)
def test_curl_example_answers_as_shown(example: Example, example_servers: dict[str, str]) -> None:
    assert example.shown, "a curl example shows its output on the `# ` lines after it"
    result = subprocess.run(
        ["curl", "--silent", "--show-error", *example.curl_arguments(example_servers[example.model])],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    assert example.matches(result.stdout), f"shown:\n{example.shown}\nanswered:\n{result.stdout}"


@pytest.mark.parametrize("example", python_examples(), ids=lambda example: example.id)
def test_python_example_prints_what_is_shown(example: Example, start_api: str) -> None:
    host = LOCAL_URL.removeprefix("http://")
    assert host in example.code, "the Python example talks to the local API"
    code = example.code.replace(host, start_api.removeprefix("http://"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)

    assert example.shown, "a Python example shows what it prints on `# ` lines at its end"
    assert example.matches(result.stdout), f"shown:\n{example.shown}\nprinted:\n{result.stdout}"
