"""Sample events from events/ and variations of them, built by keyword instead of pasted dicts."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
SEED_BODY = {"features": [6.1, 2.8, 4.7, 1.2]}

# The payload shapes the handler serves, each named by the event file it is derived from.
SHAPES = {
    "http-api": "http-api-predict.json",
    "rest-api": "rest-api-predict.json",
    "function-url": "function-url-predict.json",
}


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return event


def make_event(
    shape: str,
    *,
    method: str = "POST",
    path: str = "/predict",
    body: Any = SEED_BODY,
    raw_body: str | None = None,
    content_type: str | None = "application/json",
    base64_body: bool = False,
    query: dict[str, str] | None = None,
    stage: str | None = None,
) -> dict[str, Any]:
    """An event of `shape` (a key of SHAPES) for one request; `raw_body` is sent as is, else `body` as JSON.

    `stage` names an HTTP API stage (it then appears in rawPath) or a REST API stage (default Prod).
    """
    event = copy.deepcopy(load_event(SHAPES[shape]))
    text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    headers = event["headers"]
    if event.get("version") == "2.0":
        if stage:
            event["requestContext"]["stage"] = stage
        prefix = f"/{stage}" if stage else ""
        event["rawPath"] = event["requestContext"]["http"]["path"] = prefix + path
        event["requestContext"]["http"]["method"] = method
        event["rawQueryString"] = urlencode(query or {})
        content_type_header = "content-type"
    else:
        context = event["requestContext"]
        context["stage"] = stage or context["stage"]
        event["path"] = event["resource"] = context["resourcePath"] = path
        event["httpMethod"] = context["httpMethod"] = method
        context["path"] = f"/{context['stage']}{path}"
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
        content_type_header = "Content-Type"
    headers.pop(content_type_header, None)
    if content_type is not None and text is not None:
        headers[content_type_header] = content_type
    if "multiValueHeaders" in event:
        event["multiValueHeaders"] = {name: [value] for name, value in headers.items()}
    event["isBase64Encoded"] = base64_body
    if text is None:
        event.pop("body", None)
        if "multiValueHeaders" in event:
            event["body"] = None
    else:
        event["body"] = base64.b64encode(text.encode()).decode() if base64_body else text
    return event


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response_text(response))


def response_text(response: dict[str, Any]) -> str:
    body: str = response.get("body") or ""
    return base64.b64decode(body).decode() if response.get("isBase64Encoded") else body
