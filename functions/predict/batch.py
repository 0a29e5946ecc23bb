"""Lambda entry point of the batch job (template.yaml's BatchScoring): one Distributed Map batch.

Step Functions' ItemBatcher sends {"Items": [...], "BatchInput": {...}}; the Map's ItemSelector
makes each item {"index": <0-based item index>, "row": <the CSV or JSON Lines record>}, so every
result carries its row number in the input file. BatchInput says how to read the rows:
{"text": true for CSV (every cell a string), "probabilities": bool, "id_column": str, or null
to key every row by its number (batch_job.start decides it once for the file)}.
The model is loaded once at cold start by the runtime the API shares (serving/runtime.py), without
the API's web framework, and the scoring core is the API's validation and model call.
"""

from __future__ import annotations

from typing import Any

from serving.runtime import start
from serving.scoring import DEFAULT_ID_COLUMN, ROW, Scorer

# The batch function's service name ends in its role (SERVICE_ROLE=batch-scoring in template.yaml).
model = start().model
# A CSV file may begin with a UTF-8 byte-order mark, which the Map's reader keeps in the header's
# first name ("\ufeffid"): batch_job's start and finish read the file without it, and so do the rows.
BYTE_ORDER_MARK = "\ufeff"

_scorers: dict[tuple[str | None, bool], Scorer] = {}


def _scorer(id_column: str | None, probabilities: bool) -> Scorer:
    key = (id_column, probabilities)
    if key not in _scorers:
        _scorers[key] = Scorer(model, id_column=id_column, probabilities=probabilities)
    return _scorers[key]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"predictions": [...], "errors": [...]} for the batch, rows numbered as in the input file."""
    options = event.get("BatchInput") or {}
    items = event["Items"]
    id_column = options.get("id_column", DEFAULT_ID_COLUMN)
    scorer = _scorer(None if id_column is None else str(id_column), bool(options.get("probabilities", False)))
    rows = [item["row"] for item in items]
    if rows and all(isinstance(row, dict) for row in rows) and str(next(iter(rows[0]), "")).startswith(BYTE_ORDER_MARK):
        rows = [{str(key).removeprefix(BYTE_ORDER_MARK): value for key, value in row.items()} for row in rows]
    scored = scorer.score(rows, first_row=0, text=bool(options.get("text", False)))
    numbers = [int(item["index"]) + 1 for item in items]
    for result in scored.predictions + scored.errors:
        if ROW in result:
            result[ROW] = numbers[result[ROW]]
    return {"predictions": scored.predictions, "errors": scored.errors}
