"""functions/predict/batch.py with batches shaped exactly as Distributed Map's ItemBatcher sends them."""

from __future__ import annotations

import random
from types import ModuleType
from typing import Any

import pytest

from local.lambda_runtime import LambdaContext
from tests.events import http_api_event, response_json

NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def batch(rows: list[Any], start: int, **batch_input: Any) -> dict[str, Any]:
    return {"Items": [{"index": start + i, "row": row} for i, row in enumerate(rows)], "BatchInput": batch_input}


@pytest.mark.parametrize("text", [True, False])
def test_a_batch_is_scored_with_rows_numbered_as_in_the_file(
    app_module: ModuleType, batch_module: ModuleType, text: bool
) -> None:
    generator = random.Random(3)
    values = [[round(generator.uniform(0, 8), 1) for _ in NAMES] for _ in range(40)]
    rows: list[Any] = [dict(zip(NAMES, map(str, row) if text else row, strict=True)) for row in values]
    rows[5] = {**rows[5], "petal_width": "wide"}
    start = 5000

    result = batch_module.handler(batch(rows, start, text=text, probabilities=True, id_column=None), LambdaContext())

    assert [error["row"] for error in result["errors"]] == [start + 6]
    api = response_json(
        app_module.handler(
            http_api_event(body={"instances": values[:5] + values[6:]}, query={"probabilities": "true"}),
            LambdaContext(),
        )
    )
    assert [item["row"] for item in result["predictions"]] == [start + i + 1 for i in range(40) if i != 5]
    assert [item["prediction"] for item in result["predictions"]] == api["predictions"]
    assert [{name: item[name] for name in api["probabilities"][0]} for item in result["predictions"]] == api[
        "probabilities"
    ]


@pytest.mark.parametrize("first_column", ["id", "sepal_length"])
def test_a_byte_order_mark_the_maps_reader_kept_in_the_first_header_name_is_no_part_of_it(
    batch_module: ModuleType, first_column: str
) -> None:
    names = ["id", *NAMES] if first_column == "id" else [*NAMES, "id"]
    rows = [{name: str(index) if name == "id" else "5.1" for name in names} for index in range(3)]
    marked = [{f"\ufeff{name}" if name == first_column else name: value for name, value in row.items()} for row in rows]

    scored = batch_module.handler(batch(marked, 0, text=True, id_column="id"), LambdaContext())

    assert scored == batch_module.handler(batch(rows, 0, text=True, id_column="id"), LambdaContext())
    assert [item["id"] for item in scored["predictions"]] == ["0", "1", "2"]
    assert scored["errors"] == []
