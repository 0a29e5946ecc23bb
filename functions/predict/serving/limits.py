"""The request sizes the function accepts, consistent with Lambda's 6 MB synchronous payload."""

from __future__ import annotations

# Lambda refuses synchronous payloads over 6 MB (6,291,456 bytes) for the whole event; the body
# must leave room for the event's headers and context around it.
MAX_BODY_BYTES = 6_000_000
# Rows per request: what a 6 MB body of the widest accepted rows can carry, and what one answer scores.
MAX_INSTANCES = 10_000
