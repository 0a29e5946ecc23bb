"""CloudWatch Logs JSON filter patterns, for testing what a subscription filter lets through.

moto 5.2.5 accepts a subscription filter's pattern but delivers every event, and its
filter_log_events treats a JSON pattern as matching everything, so the tests match here:
`{ $.key.sub = "text" }`, `=`/`!=` with a quoted string (`*` as a wildcard), a bare word or a
number, `<`, `<=`, `>`, `>=` with a number, `IS TRUE/FALSE/NULL`, `NOT EXISTS`, and terms joined
by `&&` or `||` (no parentheses). A message that is not a JSON object never matches, as in
CloudWatch Logs. Anything else raises ValueError rather than guess.
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

TERM = re.compile(
    r"\s*\$\.(?P<path>[A-Za-z0-9_.\-]+)\s*"
    r"(?:(?P<op>=|!=|<=|>=|<|>)\s*(?P<value>\"(?:[^\"\\]|\\.)*\"|[^\s&|}]+)"
    r"|IS\s+(?P<is>TRUE|FALSE|NULL)|(?P<exists>NOT EXISTS))\s*"
)
MISSING = object()


def _lookup(document: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(document, dict) or part not in document:
            return MISSING
        document = document[part]
    return document


def _term(document: Any, match: re.Match[str]) -> bool:
    found = _lookup(document, match["path"])
    if match["exists"]:
        return found is MISSING
    if match["is"]:
        return found is {"TRUE": True, "FALSE": False, "NULL": None}[match["is"]]
    if found is MISSING:
        return False
    op, raw = match["op"], match["value"]
    if raw.startswith('"') or not re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", raw):
        text = json.loads(raw) if raw.startswith('"') else raw
        if op not in ("=", "!="):
            raise ValueError(f"{op} compares numbers only, not {raw}")
        equal = isinstance(found, str) and fnmatch.fnmatchcase(found, text)
        return equal if op == "=" else not equal
    if isinstance(found, bool) or not isinstance(found, int | float):
        return op == "!="
    number = float(raw)
    return {
        "=": found == number,
        "!=": found != number,
        "<": found < number,
        "<=": found <= number,
        ">": found > number,
        ">=": found >= number,
    }[op]


def matches(pattern: str, message: str) -> bool:
    """Whether CloudWatch Logs would let `message` through a filter with the JSON `pattern`."""
    body = pattern.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise ValueError(f"not a JSON filter pattern: {pattern!r}")
    try:
        document = json.loads(message)
    except json.JSONDecodeError:
        return False
    if not isinstance(document, dict):
        return False
    for alternative in body[1:-1].split("||"):
        terms = alternative.split("&&")
        parsed = [TERM.fullmatch(term) for term in terms]
        if any(term is None for term in parsed):
            raise ValueError(f"unsupported term in {pattern!r}")
        if all(_term(document, term) for term in parsed if term is not None):
            return True
    return False
