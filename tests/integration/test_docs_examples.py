"""Every curl example and the Python client example in the README and docs/ run against a built
package served by local/lambda_local.py start-api, answering what the documents show. Examples under
a `# MODEL=models/<spec>.toml` line run against the built package with that model baked in, as sam
build bakes it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from filelock import FileLock

from build.bake import bake_model
from build.spec import load_spec
from build.train import model_cache_dir
from local.lambda_local import PROJECT_ROOT
from serving.config import PACKAGE_MODEL_DIR
from serving.manifest import COMPILED
from tests.docs_examples import DEFAULT_MODEL, LOCAL_URL, Example, curl_examples, python_examples
from tests.integration.conftest import serving


@pytest.fixture(scope="session")
def example_servers(
    start_api: str, package: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The base URL serving each model the examples name: the built package for the default one, and
    for each other the built package with that model baked in place of its own."""
    urls = {DEFAULT_MODEL: start_api}
    with ExitStack() as servers:
        for model in sorted({example.model for example in curl_examples()} - {DEFAULT_MODEL}):
            urls[model] = servers.enter_context(serving(package_for(model, package, tmp_path_factory))).url
        yield urls


def package_for(model: str, built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built package with `model`'s spec baked in place of its model, as sam build bakes it (same
    training cache, engine choice and exactness gate). The rest of a package, the code, its pinned
    dependencies and its bytecode, does not depend on the model while the engine is the compiled one
    (asserted: a scikit-learn engine would need scikit-learn installed), so building it again would
    only repeat the pip install and the smoke test that `make build` and test_fresh_clone_build run,
    at about 30 s of CPU per fresh clone. Hard links: nothing here writes into the copied files."""
    spec = load_spec(PROJECT_ROOT / model)
    package = tmp_path_factory.mktemp(spec.name) / built.name
    shutil.copytree(
        built,
        package,
        copy_function=os.link,
        ignore=lambda folder, _names: [PACKAGE_MODEL_DIR] if Path(folder) == built else [],
    )
    # The workers of one run share the training cache: one trains while the others wait.
    cache = model_cache_dir(spec)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(cache.parent / f"{cache.name}.lock"):
        manifest = bake_model(package, "auto", cache, spec)
    assert manifest.serving_engine.name == COMPILED, f"{model} needs scikit-learn, which the built package lacks"
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
