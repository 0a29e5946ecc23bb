"""Every curl example and the Python client example in the README and docs/ run against the built
package served by local/lambda_local.py start-api, answering what the documents show.
Examples for another model spec run in tests/unit/test_docs_examples.py against that model."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.docs_examples import DEFAULT_MODEL, LOCAL_URL, Example, curl_examples, python_examples

DEFAULT_MODEL_EXAMPLES = [example for example in curl_examples() if example.model == DEFAULT_MODEL]


def test_the_readme_opens_with_the_seed_contract() -> None:
    first = curl_examples()[0]

    assert first.document == "README.md"
    assert '{"features": [6.1, 2.8, 4.7, 1.2]}' in first.code
    assert first.shown == '{"prediction":1}'


@pytest.mark.parametrize("example", DEFAULT_MODEL_EXAMPLES, ids=lambda example: example.id)
def test_curl_example_answers_as_shown(example: Example, start_api: str) -> None:
    assert example.shown, "a curl example shows its output on the `# ` lines after it"
    result = subprocess.run(
        ["curl", "--silent", "--show-error", *example.curl_arguments(start_api)],
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
