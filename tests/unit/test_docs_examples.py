"""The curl examples the README and docs/ show for another model than the default (a `# MODEL=...`
line in their block), answered as shown by the function serving that model, in process. The default
model's examples run against the built package in tests/integration/test_docs_examples.py."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest

from build import PROJECT_ROOT
from local.lambda_local import LambdaContext
from serving.manifest import COMPILED
from tests.docs_examples import DEFAULT_MODEL, LOCAL_URL, Example, curl_examples
from tests.events import make_event, response_text
from tests.unit.test_tabular_models import Served, served

OTHER_MODEL_EXAMPLES = [example for example in curl_examples() if example.model != DEFAULT_MODEL]


def test_the_documents_show_examples_for_another_model() -> None:
    assert {example.model for example in OTHER_MODEL_EXAMPLES} == {"models/penguins.toml"}


@pytest.fixture(scope="module")
def served_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    (model,) = {example.model for example in OTHER_MODEL_EXAMPLES}
    yield from ({model: app} for app in served((PROJECT_ROOT / model).name, COMPILED, tmp_path_factory))


def curl_event(example: Example) -> dict[str, object]:
    """The HTTP API event the example's curl command sends: its method, path, query, content type and body."""
    arguments = iter(example.curl_arguments(LOCAL_URL))
    method, content_type, body, url = "GET", None, None, ""
    for argument in arguments:
        if argument == "-X":
            method = next(arguments)
        elif argument == "-H":
            name, _, value = next(arguments).partition(":")
            assert name.lower() == "content-type", f"only the content type is sent: {name}"
            content_type = value.strip()
        elif argument == "-d":
            body = next(arguments)
            method = "POST" if method == "GET" else method
        else:
            url = argument
    parts = urlsplit(url)
    return make_event(
        "http-api",
        method=method,
        path=parts.path,
        raw_body=body,
        body=None,
        # curl -d sends a form content type unless told otherwise.
        content_type=content_type or ("application/x-www-form-urlencoded" if body is not None else None),
        query=dict(parse_qsl(parts.query)),
    )


@pytest.mark.parametrize("example", OTHER_MODEL_EXAMPLES, ids=lambda example: example.id)
def test_curl_example_answers_as_shown(example: Example, served_models: dict[str, Served]) -> None:
    assert example.shown, "a curl example shows its output on the `# ` lines after it"
    response = served_models[example.model].app.handler(curl_event(example), LambdaContext())
    answered = response_text(response)

    assert example.matches(answered), f"shown:\n{example.shown}\nanswered:\n{answered}"
