"""Reading captured requests back, as Firehose writes them: shared by `make drift` and the scheduled
drift function.

Firehose writes objects under `<prefix>YYYY/MM/DD/HH/` (UTC, the hour the object's oldest record
arrived). With its CloudWatch Logs decompression and message extraction (template.yaml) an object
is gzip'd JSON lines, one capture record a line; without them (and as moto delivers it) it is
gzip'd CloudWatch Logs envelopes, `{"messageType": "DATA_MESSAGE", "logEvents": [{"message":
...}]}`, one after another. Both are read; lines that are not capture records are skipped.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from serving.capture import CAPTURE_KEY, CAPTURE_SCHEMA
from serving.manifest import Manifest
from serving.profile import DriftResult

HOUR_FORMAT = "%Y/%m/%d/%H/"
"""Firehose's default time prefix under the configured prefix."""
EARLIER_HOURS = 1
"""Hour folders read before the range: log delivery and buffering put records in the hour they reach Firehose."""
GZIP_MAGIC = b"\x1f\x8b"
MAX_SHOWN = 80


class CaptureReadError(Exception):
    """A captured object cannot be read; the message names the object and what was expected."""


def parse_object(payload: bytes, where: str) -> Iterator[dict[str, Any]]:
    """The capture records in one object (gzip'd or not; JSON lines or CloudWatch Logs envelopes)."""
    try:
        text = (gzip.decompress(payload) if payload[:2] == GZIP_MAGIC else payload).decode()
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise CaptureReadError(f"{where}: not gzip'd or plain UTF-8 text ({error})") from error
    decoder = json.JSONDecoder()
    position, end = 0, len(text)
    while True:
        while position < end and text[position].isspace():
            position += 1
        if position == end:
            return
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise CaptureReadError(
                f"{where}: expected JSON lines or CloudWatch Logs envelopes, got {text[error.pos : error.pos + 20]!r} "
                f"at character {error.pos}"
            ) from error
        if isinstance(value, dict) and "logEvents" in value:
            for event in value["logEvents"] if value.get("messageType") == "DATA_MESSAGE" else []:
                yield from _messages(event.get("message", ""))
        elif _is_capture(value):
            yield value


def _messages(message: str) -> Iterator[dict[str, Any]]:
    try:
        value = json.loads(message)
    except json.JSONDecodeError:
        return  # another log line of the function: the pattern should have left it out, the reader does
    if _is_capture(value):
        yield value


def _is_capture(value: Any) -> bool:
    return isinstance(value, dict) and value.get(CAPTURE_KEY) == CAPTURE_SCHEMA


def hour_prefixes(prefix: str, start: datetime, end: datetime) -> list[str]:
    """The hour folders that can hold records from [start, end)."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=EARLIER_HOURS)
    folders = []
    while hour < end:
        folders.append(prefix + hour.strftime(HOUR_FORMAT))
        hour += timedelta(hours=1)
    return folders


def local_objects(folder: Path) -> Iterator[tuple[str, bytes]]:
    """Every file under `folder` (e.g. a bucket synced with `aws s3 sync`), in name order."""
    if not folder.is_dir():
        raise CaptureReadError(f"{folder} is not a folder of captured objects")
    for path in sorted(item for item in folder.rglob("*") if item.is_file()):
        yield str(path), path.read_bytes()


def s3_objects(client: Any, bucket: str, prefix: str, start: datetime, end: datetime) -> Iterator[tuple[str, bytes]]:
    """The objects in the hour folders of [start, end) under s3://bucket/prefix."""
    paginator = client.get_paginator("list_objects_v2")
    for folder in hour_prefixes(prefix, start, end):
        for page in paginator.paginate(Bucket=bucket, Prefix=folder):
            for item in page.get("Contents", []):
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                yield f"s3://{bucket}/{item['Key']}", body


@dataclass
class Captured:
    """The captured values of one model version in a time range, column by column."""

    columns: dict[str, list[Any]]
    predictions: list[Any] = field(default_factory=list)
    records: int = 0
    objects: int = 0
    other_models: Counter[str] = field(default_factory=Counter)
    """Records of another model or version (name:version), left out."""


def collect(objects: Iterable[tuple[str, bytes]], manifest: Manifest, start: datetime, end: datetime) -> Captured:
    """The rows captured for `manifest`'s model and version from `start` (inclusive) to `end`."""
    names = [feature.name for feature in manifest.captured_features]
    captured = Captured(columns={name: [] for name in names})
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    columns = [captured.columns[name] for name in names]
    for where, payload in objects:
        captured.objects += 1
        for record in parse_object(payload, where):
            if not start_ms <= record.get("time_ms", -1) < end_ms:
                continue
            if record.get("model") != manifest.name or record.get("version") != manifest.version:
                captured.other_models[f"{record.get('model')}:{record.get('version')}"] += 1
                continue
            captured.records += 1
            for instance in record["instances"]:
                for name, column in zip(names, columns, strict=True):
                    column.append(instance.get(name))
            captured.predictions.extend(record["predictions"])
    return captured


def summary_of(
    manifest: Manifest, start: datetime, end: datetime, captured: Captured, result: DriftResult, **extra: Any
) -> dict[str, Any]:
    """What both drift checks (make drift, the scheduled function) report: the model, the range,
    what was read, anything `extra`, and the scores."""
    return {
        "model": manifest.name,
        "version": manifest.version,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "objects": captured.objects,
        "records": captured.records,
        "other_models": dict(captured.other_models),
        **extra,
        **result.as_dict(),
    }
