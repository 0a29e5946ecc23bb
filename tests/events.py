"""Sample events from events/ and variations of them, built by keyword instead of pasted dicts."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
SEED_BODY = {"features": [6.1, 2.8, 4.7, 1.2]}


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request, as any event builder takes it; `raw_body` is sent as is, else `body` as JSON.

    `stage` names an HTTP API stage (it then appears in rawPath) or a REST API stage (default Prod).
    """

    method: str = "POST"
    path: str = "/predict"
    body: Any = field(default_factory=lambda: copy.deepcopy(SEED_BODY))
    raw_body: str | None = None
    content_type: str | None = "application/json"
    base64_body: bool = False
    query: dict[str, str] | None = None
    stage: str | None = None

    @property
    def text(self) -> str | None:
        return self.raw_body if self.raw_body is not None else (None if self.body is None else json.dumps(self.body))


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return event


def _set_body(event: dict[str, Any], request: HttpRequest, content_type_header: str) -> None:
    text = request.text
    headers = event["headers"]
    headers.pop(content_type_header, None)
    if request.content_type is not None and text is not None:
        headers[content_type_header] = request.content_type
    event["isBase64Encoded"] = request.base64_body
    if text is not None:
        event["body"] = base64.b64encode(text.encode()).decode() if request.base64_body else text


def payload_v2_event(sample: str, request: HttpRequest) -> dict[str, Any]:
    """Payload format 2.0 (HTTP API, Function URL): `sample` from events/ made to carry `request`."""
    event = copy.deepcopy(load_event(sample))
    if request.stage:
        event["requestContext"]["stage"] = request.stage
    prefix = f"/{request.stage}" if request.stage else ""
    event["rawPath"] = event["requestContext"]["http"]["path"] = prefix + request.path
    event["requestContext"]["http"]["method"] = request.method
    event["rawQueryString"] = urlencode(request.query or {})
    event.pop("body", None)
    _set_body(event, request, "content-type")
    return event


def payload_v1_event(request: HttpRequest) -> dict[str, Any]:
    """Payload format 1.0 (REST API): events/rest-api-predict.json made to carry `request`, with
    multiValueHeaders and the query's multi-value form kept consistent with the single-value ones."""
    event = copy.deepcopy(load_event("rest-api-predict.json"))
    context = event["requestContext"]
    context["stage"] = request.stage or context["stage"]
    event["path"] = event["resource"] = context["resourcePath"] = request.path
    event["httpMethod"] = context["httpMethod"] = request.method
    context["path"] = f"/{context['stage']}{request.path}"
    query = request.query
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    event["body"] = None
    _set_body(event, request, "Content-Type")
    event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    return event


def http_api_event(**request: Any) -> dict[str, Any]:
    """An HTTP API event (payload 2.0) for the request described by HttpRequest's keywords."""
    return payload_v2_event("http-api-predict.json", HttpRequest(**request))


def function_url_event(**request: Any) -> dict[str, Any]:
    """A Function URL event (payload 2.0) for the request described by HttpRequest's keywords."""
    return payload_v2_event("function-url-predict.json", HttpRequest(**request))


def rest_api_event(**request: Any) -> dict[str, Any]:
    """A REST API event (payload 1.0) for the request described by HttpRequest's keywords."""
    return payload_v1_event(HttpRequest(**request))


# The event sources the handler serves, each with its builder: for tests that run on every one.
EVENT_BUILDERS = {"http-api": http_api_event, "rest-api": rest_api_event, "function-url": function_url_event}


CUSTOM_DOMAIN = "api.example.com"


def custom_domain_event(shape: str, stage: str, **request: Any) -> dict[str, Any]:
    """An event of payload `shape` for a client calling `request`'s path through a custom domain
    mapped to the API's stage `stage`: the URL never carries the stage (the event still names it);
    a mapping key, if any, is part of the path. API Gateway puts that path in rawPath and
    requestContext.http.path (2.0) or in path and requestContext.path (1.0)."""
    event = EVENT_BUILDERS[shape](**request, stage=stage)
    path = HttpRequest(**request).path
    context = event["requestContext"]
    context["domainName"] = CUSTOM_DOMAIN
    context["domainPrefix"] = CUSTOM_DOMAIN.split(".")[0]
    if event.get("version") == "2.0":
        event["rawPath"] = context["http"]["path"] = path
        event["headers"]["host"] = CUSTOM_DOMAIN
    else:
        event["path"] = context["path"] = path
        event["headers"]["Host"] = CUSTOM_DOMAIN
        event["multiValueHeaders"]["Host"] = [CUSTOM_DOMAIN]
    return event


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response_text(response))


def response_text(response: dict[str, Any]) -> str:
    body: str = response.get("body") or ""
    return base64.b64decode(body).decode() if response.get("isBase64Encoded") else body
