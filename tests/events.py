"""Sample events from events/ and variations of them, built by keyword instead of pasted dicts."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

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
) -> dict[str, Any]:
    """An event of `shape` (a key of SHAPES) for one request; `raw_body` is sent as is, else `body` as JSON."""
    event = copy.deepcopy(load_event(SHAPES[shape]))
    text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    if event.get("version") == "2.0":
        headers = event["headers"]
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["requestContext"]["http"]["method"] = method
        content_type_header = "content-type"
    else:
        headers = event["headers"]
        event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = path
        event["httpMethod"] = event["requestContext"]["httpMethod"] = method
        event["requestContext"]["path"] = f"/{event['requestContext']['stage']}{path}"
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
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)
