"""The errors the function reports, one class per HTTP status, and the helpers that keep their
messages short.

Every error body has the shape {"error": "<message>"} (serving/error_handlers.py answers it);
messages name what was wrong and what is accepted, and are written where the error is raised.
A class of its own exists only where some caller catches it or several places raise it. This
module imports no web framework: the batch function raises and catches these too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

INTERNAL_ERROR_MESSAGE = "internal error; the request was logged and can be retried"
# Error bodies stay small whatever the client sent: each quoted client value is cut to
# MAX_QUOTED_CHARS, at most MAX_LISTED_PROBLEMS problems are listed, and no message exceeds
# MAX_MESSAGE_CHARS (a backstop: a body over Lambda's 6 MB response limit is a 5xx).
MAX_QUOTED_CHARS = 80
MAX_LISTED_PROBLEMS = 5
# A problem's own text (pydantic's, or a validator's list of accepted values), never client input.
MAX_PROBLEM_CHARS = 400
MAX_MESSAGE_CHARS = 2000
# Load errors go to the log, not to a client: longer than a client's quote, still bounded.
MAX_LOGGED_CHARS = 1000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shorten(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """Client text (a path, a key) for an error message: at most `limit` ASCII characters, with
    control and non-ASCII characters escaped, so its JSON encoding stays as short."""
    # Not mutated, equivalent: any bound past the limit is cut the same; one more character tells.
    head = text[: limit + 1]  # pragma: no mutate
    # Not mutated, equivalent: codec names are case-insensitive.
    return _cut(head.encode("unicode_escape").decode("ascii"), limit)  # pragma: no mutate


def quote(value: Any, limit: int = MAX_QUOTED_CHARS) -> str:
    """A client value as JSON for an error message, at most `limit` characters.

    Rendered piece by piece and stopped once over the limit, so quoting a 6 MB value costs
    no more than quoting a short one and a deeply nested one cannot exhaust the stack
    (every level adds a character before descending).
    """
    pieces: list[str] = []
    size = 0

    def emit(text: str) -> None:
        nonlocal size
        pieces.append(text)
        size += len(text)

    def render(item: Any) -> None:
        if isinstance(item, dict):
            emit("{")
            for index, (key, inner) in enumerate(item.items()):
                if size > limit:
                    return
                # Not mutated, equivalent: any bound past the limit is cut the same.
                key_text = json.dumps(str(key)[: limit + 1])  # pragma: no mutate
                emit(f"{', ' if index else ''}{key_text}: ")
                render(inner)
            emit("}")
        elif isinstance(item, list | tuple):
            emit("[")
            for index, inner in enumerate(item):
                if size > limit:
                    return
                emit(", " if index else "")
                render(inner)
            emit("]")
        elif isinstance(item, str):
            # Not mutated, equivalent: any bound past the limit is cut the same.
            emit(json.dumps(item[: limit + 1]))  # pragma: no mutate
        else:
            emit(json.dumps(item, default=str))

    render(value)
    return _cut("".join(pieces), limit)


def _format_location(location: Sequence[int | str], prefix: str) -> str:
    text = prefix
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f".{shorten(part)}" if text else shorten(part)
    return text or "body"


def describe_problems(problems: Sequence[Mapping[str, Any]], prefix: str = "") -> str:
    """pydantic's errors as one line: the first few, each with its location, what was wrong and
    the value received; then how many more there were."""
    described = [
        f"{_format_location(problem['loc'], prefix)}: {_cut(problem['msg'], MAX_PROBLEM_CHARS)}"
        + (f" (got {quote(problem['input'])})" if "input" in problem and problem["type"] != "missing" else "")
        for problem in problems[:MAX_LISTED_PROBLEMS]
    ]
    if len(problems) > MAX_LISTED_PROBLEMS:
        described.append(f"and {len(problems) - MAX_LISTED_PROBLEMS:,} more")
    return "; ".join(described)


class ServiceError(Exception):
    """Base of every error the function reports: a bounded message and the HTTP status it is answered
    with (the class's, or `status_code` for a framework error passed on with its own)."""

    status_code = 500

    def __init__(self, message: str, status_code: int | None = None) -> None:
        self.message = _cut(message, MAX_MESSAGE_CHARS)
        if status_code is not None:
            self.status_code = status_code
        super().__init__(self.message)


class BadRequestError(ServiceError):
    """400: the body is not JSON, or an infer request does not follow the protocol or fit the model."""

    status_code = 400


class NotFoundError(ServiceError):
    """404: no model with that name (or not that version of it) is served here."""

    status_code = 404


class PayloadTooLargeError(ServiceError):
    """413: the request body is over the size the function accepts."""

    status_code = 413


class UnsupportedMediaTypeError(ServiceError):
    """415: the request declares a content type other than JSON."""

    status_code = 415


class InvalidRequestError(ServiceError):
    """422: the body is JSON but does not match what the route accepts. Scoring catches it to
    turn a refused row into an error row."""

    status_code = 422


class NoProbabilitiesError(InvalidRequestError):
    """Probabilities were asked of a regressor, which predicts a number, not classes (the API and
    the scoring runs both refuse it)."""

    def __init__(self, model_name: str) -> None:
        super().__init__(
            f"model {quote(model_name)} is a regressor: it predicts a number, not class probabilities; "
            "omit ?probabilities=true"
        )


class ModelLoadError(ServiceError):
    """The model or its manifest is missing, corrupt or incompatible; the function must not start."""


class PickledVersionError(ModelLoadError):
    """The estimator was pickled by another scikit-learn version than the one shipped (the build
    catches it to say how to pickle it again)."""

    def __init__(self, path: Path, pickled_with: str, running: str) -> None:
        super().__init__(
            f"model {path} was pickled with scikit-learn {pickled_with} but this function runs {running}; "
            "rebuild the package"
        )
        self.pickled_with = pickled_with
