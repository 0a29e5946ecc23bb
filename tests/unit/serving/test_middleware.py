"""A custom domain's API mapping key (API_BASE_PATH): the routes, /docs and the schema's links under
it on every payload format, whatever stage the mapping points at; a path that only shares its
first characters is not under it; a bad value or one that hides a route refuses to start."""

from __future__ import annotations

import importlib
import re
import string
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local.lambda_runtime import LambdaContext
from serving.config import API_BASE_PATH_VARIABLE, ConfigurationError, load_settings
from tests.cloudformation import deployed, source_template
from tests.events import EVENT_BUILDERS, SEED_BODY, custom_domain_event, http_api_event, response_json, response_text
from tests.shared import examples
from tests.unit.conftest import LogRecords, imported_app, one_engine

# Written out here, not imported: what API Gateway accepts in a mapping key (letters, digits and
# $-_.+!*'()), so the generated base paths do not come from the pattern under test.
KEY_CHARACTERS = string.ascii_letters + string.digits + "$-_.+!*'()"
# The first segments of the API's own routes (README's route list): a base path must not start there.
ROUTE_SEGMENTS = {"", "predict", "model", "docs", "openapi.json", "v2"}
TEMPLATE_PATTERN = source_template()["Parameters"]["ApiBasePath"]["AllowedPattern"]


segments = st.text(KEY_CHARACTERS, min_size=1, max_size=12).filter(lambda s: s.strip(".") != "")
base_paths = (
    st.lists(segments, min_size=1, max_size=3)
    .filter(lambda s: s[0] not in ROUTE_SEGMENTS)
    .map(lambda s: "/" + "/".join(s))
)
# The stage the custom domain maps to: each format's usual ones, and for REST the common `v1` → `v1`.
STAGES = {"http-api": ["$default", "prod"], "rest-api": ["Prod", "v1"], "function-url": ["$default"]}


@contextmanager
def app_with_base_path(model_dir: Path, base_path: str) -> Iterator[ModuleType]:
    """app.py freshly imported (a cold start) with API_BASE_PATH set to `base_path`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(API_BASE_PATH_VARIABLE, base_path)
        with imported_app(model_dir) as module:
            yield module


def call(app: ModuleType, shape: str, stage: str, path: str, method: str = "GET") -> dict[str, Any]:
    """The response to `method path` called through a custom domain mapped to `stage` (Function URLs
    have no custom domain: the path is the URL's as is)."""
    body = SEED_BODY if method == "POST" else None
    if shape == "function-url":
        event = EVENT_BUILDERS[shape](method=method, path=path, body=body)
    else:
        event = custom_domain_event(shape, stage, method=method, path=path, body=body)
    response: dict[str, Any] = app.handler(event, LambdaContext())
    return response


# Each example imports the app afresh (a cold start under that base path) and calls it in every payload
# format, under the base path and at a path that only starts like it: half the profile's count, on one
# engine (`one_engine`): the base path is resolved before the model is called, and both engines answer
# the seed. The schema's server URL is the docs page's root path (serving/docs.py), checked here through
# the docs page; the schema itself is checked under one base path below: building it would more than
# double an example's cost.
COLD_STARTS = settings(max_examples=examples(0.5))


@one_engine
@COLD_STARTS
@given(base_path=base_paths, tail=st.text(KEY_CHARACTERS, min_size=1, max_size=6), data=st.data())
def test_the_api_answers_under_the_base_path_and_not_at_a_path_that_only_starts_like_it(
    base_path: str, tail: str, data: st.DataObject, iris_model_dir: Path
) -> None:
    # `{base_path}{tail}` shares the base path's first characters without being under it.
    called = f"{base_path}{tail}/predict"
    with app_with_base_path(iris_model_dir, base_path) as app:
        for shape in EVENT_BUILDERS:
            stage = data.draw(st.sampled_from(STAGES[shape]), label=f"{shape} stage")
            predicted = call(app, shape, stage, f"{base_path}/predict", method="POST")
            docs = call(app, shape, stage, f"{base_path}/docs")
            status = call(app, shape, stage, base_path)

            assert predicted["body"] == '{"prediction":1}', shape
            assert f"url: '{base_path}/openapi.json'" in docs["body"], shape
            assert status["statusCode"] == 200, shape

            # A custom domain mapped at the root with a path starting with the stage's name: the stage
            # guard's own case (below), not this one.
            if called.startswith(f"/{stage}/"):
                continue
            response = call(app, shape, stage, called, method="POST")
            assert response["statusCode"] == 404, shape
            assert response_json(response)["error"].startswith(f"no route for POST {called}; available: "), shape


@one_engine
def test_the_schema_names_the_base_path_as_its_server_in_every_payload_format(iris_model_dir: Path) -> None:
    base_path = "/ml/iris-v2"
    with app_with_base_path(iris_model_dir, base_path) as app:
        for shape, stages in STAGES.items():
            for stage in stages:
                schema = response_json(call(app, shape, stage, f"{base_path}/openapi.json"))

                assert schema["servers"] == [{"url": base_path}], (shape, stage)
                assert "/predict" in schema["paths"], (shape, stage)


@one_engine
@pytest.mark.parametrize(("shape", "stage"), [("http-api", "prod"), ("rest-api", "Prod"), ("rest-api", "v1")])
def test_the_execute_api_url_keeps_its_stage_when_a_base_path_is_set(
    shape: str, stage: str, iris_model_dir: Path, lambda_context: LambdaContext
) -> None:
    # The same API reached through its execute-api URL: the stage, not the mapping key, is the root.
    with app_with_base_path(iris_model_dir, "/iris") as app:
        predicted = app.handler(EVENT_BUILDERS[shape](stage=stage), lambda_context)
        schema = response_json(
            app.handler(
                EVENT_BUILDERS[shape](method="GET", path="/openapi.json", body=None, stage=stage), lambda_context
            )
        )

    assert predicted["body"] == '{"prediction":1}'
    assert schema["servers"] == [{"url": f"/{stage}"}]


@one_engine
@pytest.mark.parametrize("shape", ["http-api", "rest-api"])
def test_a_mapping_key_named_like_its_stage_is_taken_off_once(shape: str, iris_model_dir: Path) -> None:
    # https://api.example.com/v1/predict mapped to the stage v1: the URL carries the key, not the stage.
    with app_with_base_path(iris_model_dir, "/v1") as app:
        predicted = call(app, shape, "v1", "/v1/predict", method="POST")
        schema = response_json(call(app, shape, "v1", "/v1/openapi.json"))

    assert predicted["body"] == '{"prediction":1}'
    assert schema["servers"] == [{"url": "/v1"}]


def bad_base_paths() -> st.SearchStrategy[str]:
    """Values API_BASE_PATH refuses, built by what makes them wrong."""
    good = base_paths
    # Characters no path key has, but not NUL: no environment variable can hold it.
    forbidden = st.characters(exclude_characters=KEY_CHARACTERS + "/\x00", codec="utf-8")
    return st.one_of(
        good.map(lambda path: path.lstrip("/")),  # no leading slash
        good.map(lambda path: path + "/"),  # a trailing slash
        st.tuples(good, forbidden, good).map(lambda t: t[0] + t[1] + t[2]),  # a character no path key has
        st.tuples(good, st.sampled_from([".", ".."])).map(lambda t: f"{t[0]}/{t[1]}"),  # a dot segment
        st.tuples(good, good).map(lambda t: t[0] + "/" + t[1]),  # a double slash
        st.just("/"),
    )


@given(value=bad_base_paths())
def test_a_bad_base_path_is_refused(value: str) -> None:
    expected = f"^{API_BASE_PATH_VARIABLE} is {re.escape(repr(value))}: expected empty or a path"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(API_BASE_PATH_VARIABLE, value)
        with pytest.raises(ConfigurationError, match=expected):
            load_settings()


@one_engine
@pytest.mark.parametrize(
    ("value", "hidden"),
    [("/predict", "/predict"), ("/v2", "/v2/health/live"), ("/v2/models/iris", "/v2/models/{name}/infer")],
)
def test_a_base_path_that_hides_a_route_refuses_to_start(
    value: str, hidden: str, iris_model_dir: Path, monkeypatch: pytest.MonkeyPatch, log_records: LogRecords
) -> None:
    monkeypatch.setenv(API_BASE_PATH_VARIABLE, value)
    monkeypatch.setenv("MODEL_DIR", str(iris_model_dir))
    monkeypatch.delitem(sys.modules, "app", raising=False)

    with pytest.raises(
        ConfigurationError, match=f"{API_BASE_PATH_VARIABLE} {value} is the start of the routes .*{re.escape(hidden)}"
    ):
        importlib.import_module("app")

    [record] = [record for record in log_records() if record["level"] == "ERROR"]
    assert record["message"] == "refusing to start: the configuration or the model failed to load"


def test_the_template_parameter_sets_the_base_path() -> None:
    resources, _ = deployed({"ApiBasePath": "/ml/iris"})
    variables = resources["PredictFunction"]["Properties"]["Environment"]["Variables"]
    default_resources, _ = deployed({})

    assert variables[API_BASE_PATH_VARIABLE] == "/ml/iris"
    assert API_BASE_PATH_VARIABLE not in default_resources["PredictFunction"]["Properties"]["Environment"]["Variables"]


@given(value=st.one_of(base_paths, bad_base_paths(), st.text(KEY_CHARACTERS + "/ .é?%")))
def test_the_template_accepts_what_the_function_accepts(value: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(API_BASE_PATH_VARIABLE, value)
        try:
            load_settings()
            accepted = True
        except ConfigurationError:
            accepted = False

    assert bool(re.fullmatch(TEMPLATE_PATTERN, value)) == accepted


# The stage guard where it is reached: named stages, and custom domains, where API Gateway names a stage in the event
# that the client's URL does not carry (tests/unit/serving/test_docs.py covers the execute-api and Function URL mounts).


def event_at(shape: str, stage: str, path: str, *, custom_domain: bool, method: str = "POST") -> dict[str, Any]:
    """An event for a client calling `path` on stage `stage`, through the API's execute-api domain
    (the stage is the URL's first segment) or through a custom domain mapped to the stage at its
    root (the URL has no stage segment, the event still names the stage)."""
    body = None if method == "GET" else {"features": [6.1, 2.8, 4.7, 1.2]}
    if custom_domain:
        return custom_domain_event(shape, stage, method=method, path=path, body=body)
    return EVENT_BUILDERS[shape](method=method, path=path, body=body, stage=stage)


# (event shape, the stage the event names) behind a custom domain: the client's URLs carry no stage.
CUSTOM_DOMAIN_MOUNTS = [("http-api", "$default"), ("http-api", "prod"), ("rest-api", "Prod"), ("rest-api", "v1")]


@pytest.mark.parametrize(("shape", "stage"), CUSTOM_DOMAIN_MOUNTS)
def test_behind_a_custom_domain_no_stage_prefix_is_added(
    shape: str, stage: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    def get(path: str) -> dict[str, Any]:
        response: dict[str, Any] = app_module.handler(
            event_at(shape, stage, path, custom_domain=True, method="GET"), lambda_context
        )
        return response

    predicted = app_module.handler(event_at(shape, stage, "/predict", custom_domain=True), lambda_context)
    docs = get("/docs")
    schema = response_json(get("/openapi.json"))

    assert predicted["body"] == '{"prediction":1}'
    assert "url: '/openapi.json'" in docs["body"]
    assert schema["servers"] == [{"url": "/"}]


@pytest.mark.parametrize(
    ("shape", "stage", "custom_domain", "called"),
    [
        # The stage's name as the start of a longer first segment.
        ("http-api", "prod", True, "/production/predict"),
        ("rest-api", "Prod", True, "/Production/predict"),
        # The stage's name again after the stage: stripped once only.
        ("http-api", "prod", False, "/prod/predict"),
        ("rest-api", "Prod", False, "/Prod/predict"),
    ],
)
def test_a_path_that_only_looks_like_a_stage_is_not_stripped_on_a_named_stage(
    shape: str, stage: str, custom_domain: bool, called: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    event = event_at(shape, stage, called, custom_domain=custom_domain)

    response = app_module.handler(event, lambda_context)

    # The 404 names the path the client called, stage segment included when the URL has one.
    client_path = called if custom_domain else f"/{stage}{called}"
    assert response["statusCode"] == 404
    assert response_json(response)["error"].startswith(f"no route for POST {client_path}; available: ")


def test_the_default_stage_has_no_url_segment_to_strip(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    """An HTTP API's `$default` stage is served at the API's root: a client that calls
    /$default/predict asks for a path the API does not have (a named stage would be stripped)."""
    called = http_api_event(method="POST", path="/predict", body={"features": [6.1, 2.8, 4.7, 1.2]}, stage="$default")
    at_root = http_api_event(method="POST", path="/predict", body={"features": [6.1, 2.8, 4.7, 1.2]})
    at_root["requestContext"]["stage"] = "$default"

    response = app_module.handler(called, lambda_context)

    assert called["rawPath"] == "/$default/predict"
    assert response["statusCode"] == 404
    assert response_json(response)["error"].startswith("no route for POST /$default/predict; available: ")
    assert app_module.handler(at_root, lambda_context)["body"] == '{"prediction":1}'


MODEL = "iris-random-forest"


def openapi(app_module: ModuleType, context: LambdaContext) -> dict[str, Any]:
    schema: dict[str, Any] = response_json(
        app_module.handler(http_api_event(method="GET", path="/openapi.json", body=None), context)
    )
    return schema


def get_paths(app_module: ModuleType, context: LambdaContext) -> list[str]:
    version = app_module.model.manifest.version
    paths = openapi(app_module, context)["paths"]
    concrete = [path.replace("{name}", MODEL).replace("{version}", version) for path in paths if "get" in paths[path]]
    return [*concrete, "/docs", "/openapi.json", "/nowhere", "/predict"]


@pytest.mark.parametrize("shape", ["http-api", "rest-api"])
def test_head_answers_like_get_without_a_body(
    shape: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    for path in get_paths(app_module, lambda_context):
        get = app_module.handler(EVENT_BUILDERS[shape](method="GET", path=path, body=None), lambda_context)
        head = app_module.handler(EVENT_BUILDERS[shape](method="HEAD", path=path, body=None), lambda_context)

        assert head["statusCode"] == get["statusCode"], path
        assert head["headers"] == get["headers"], path
        assert response_text(head) == ""


@pytest.mark.parametrize("path", ["", "/"])
def test_a_named_stages_root_is_the_status_route(
    path: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    event = http_api_event(method="GET", path=path, body=None, stage="prod")

    response = app_module.handler(event, lambda_context)

    assert response["statusCode"] == 200
    assert response_json(response)["status"] == "ok"
