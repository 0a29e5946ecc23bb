"""Property-based fuzz of whole events through the handler: generated JSON values, generated
events of other services, and generated malformations of every real event in events/. Whatever
arrives, the handler raises nothing but the function's own UnsupportedEventError (for events
that are not HTTP requests), answers no HTTP event with a 5xx or an unbounded body, and the warm
environment still answers the seed contract afterwards. Fixed seed (derandomize) and bounded
example budgets keep it reproducible and within seconds."""

from __future__ import annotations

import copy
import json
from types import ModuleType
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from local.lambda_runtime import LambdaContext
from serving.events import UnsupportedEventError
from tests.events import http_api_event, load_event, response_text
from tests.expectations import EVENT_EXPECTATIONS
from tests.sam_events import NON_HTTP_SAMPLES, sam_sample

# An error body names the problem and what is accepted, never more than a few KB.
MAX_ERROR_BODY = 4096
# Every character, lone surrogates too: a JSON "\ud800" escape reaches the handler as one.
TEXT = st.text(st.characters(exclude_categories=()), max_size=24)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
REAL_EVENTS = sorted(EVENT_EXPECTATIONS)


def invoke(app_module: ModuleType, event: Any) -> dict[str, Any] | None:
    """The handler's response, or None when it refused an event that is not an HTTP request."""
    try:
        response: dict[str, Any] = app_module.handler(event, LambdaContext())
    except UnsupportedEventError:
        return None
    return response


def check_answer(response: dict[str, Any]) -> None:
    assert 200 <= response["statusCode"] < 500, response
    if response["statusCode"] >= 400:
        text = response_text(response)
        assert len(text) <= MAX_ERROR_BODY
        assert set(json.loads(text)) == {"error"}


def assert_still_serving(app_module: ModuleType) -> None:
    assert app_module.handler(http_api_event(), LambdaContext())["body"] == '{"prediction":1}'


@given(event=JSON)
def test_any_json_value_is_refused_or_answered_below_500(app_module: ModuleType, event: Any) -> None:
    response = invoke(app_module, event)
    if response is not None:
        check_answer(response)
    assert_still_serving(app_module)


@st.composite
def other_service_events(draw: st.DrawFn) -> Any:
    """A sample event of another AWS service with its values replaced by generated JSON (its top-level
    keys, which say what kind of event it is, kept)."""
    # Not a load balancer's event: it is HTTP-shaped, told apart only by its requestContext.elb.
    service, event_type = draw(st.sampled_from([sample for sample in NON_HTTP_SAMPLES if sample[0] != "alb"]))
    event = sam_sample(service, event_type)
    for key in draw(st.lists(st.sampled_from(sorted(event)), max_size=3, unique=True)):
        event[key] = draw(JSON)
    return event


@given(event=other_service_events())
def test_events_of_other_services_are_refused(app_module: ModuleType, event: Any) -> None:
    assert invoke(app_module, event) is None
    assert_still_serving(app_module)


@st.composite
def malformed_events(draw: st.DrawFn) -> dict[str, Any]:
    """A real event from events/ with a few fields, anywhere in it, dropped or replaced by generated JSON."""
    event: dict[str, Any] = copy.deepcopy(load_event(draw(st.sampled_from(REAL_EVENTS))))
    for _ in range(draw(st.integers(1, 3))):
        container: Any = event
        # Walk down a random path; stop at any level.
        while True:
            keys = list(container) if isinstance(container, dict) else list(range(len(container)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = container[key]
            if isinstance(child, dict | list) and child and draw(st.booleans()):
                container = child
                continue
            if isinstance(container, dict) and draw(st.booleans()):
                del container[key]
            else:
                container[key] = draw(JSON)
            break
    return event


@given(event=malformed_events())
def test_malformed_http_events_get_no_5xx(app_module: ModuleType, event: dict[str, Any]) -> None:
    response = invoke(app_module, event)
    assert response is not None
    check_answer(response)
    assert_still_serving(app_module)
