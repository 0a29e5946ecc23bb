"""Models defined inside `models_built_when_first_used` are built by their first use (or by
`build_deferred_models`), then behave exactly as models built when defined; pydantic is left as it
was found. Modules left out of the package fail to import at once."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from serving import cold_start
from serving.cold_start import build_deferred_models, models_built_when_first_used, record_left_out_modules

VALID = {"name": "root", "children": [{"name": "leaf", "children": []}], "weight": 2}
INVALID = {"name": 3, "children": [{"children": "none"}], "weight": "heavy"}


def define_tree() -> type[BaseModel]:
    """A self-referencing model with an explicit rebuild, as FastAPI's OpenAPI `Schema` is."""

    class Tree(BaseModel):
        name: str
        children: list[Tree]
        weight: int = 1

    Tree.model_rebuild()
    return Tree


def errors(model: type[BaseModel], data: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)
    return raised.value.errors()


def test_a_model_defined_in_the_block_is_built_on_first_use_not_when_defined() -> None:
    with models_built_when_first_used():
        deferred = define_tree()

    assert deferred.__pydantic_complete__ is False
    deferred.model_validate(VALID)
    assert deferred.__pydantic_complete__ is True


def test_a_deferred_model_validates_serializes_and_describes_itself_as_a_built_one() -> None:
    built = define_tree()
    with models_built_when_first_used():
        deferred = define_tree()

    assert deferred.model_validate(VALID).model_dump() == built.model_validate(VALID).model_dump()
    assert errors(deferred, INVALID) == errors(built, INVALID)
    assert deferred.model_json_schema() == built.model_json_schema()


def test_a_forced_rebuild_in_the_block_builds_at_once_resolving_names_where_it_is_called() -> None:
    with models_built_when_first_used():

        class Segment(BaseModel):
            start: Point  # defined below: resolved by the rebuild, from this function's names

        class Point(BaseModel):
            x: int

        Segment.model_rebuild(force=True)

    assert Segment.__pydantic_complete__ is True
    assert Segment.model_validate({"start": {"x": 1}}).start == Point(x=1)


def test_a_model_used_in_the_block_is_built_there() -> None:
    with models_built_when_first_used():

        class Flow(BaseModel):
            url: str = "/token"

        class Flows(BaseModel):
            # An instance as a default, as FastAPI's OAuth2 security scheme has at import.
            password: Flow = Flow()

    assert Flow.__pydantic_complete__ is True
    assert Flows().password.url == "/token"


def test_pydantic_is_left_as_it_was_found_even_when_the_block_fails() -> None:
    config, rebuild = BaseModel.model_config, BaseModel.__dict__["model_rebuild"]

    with models_built_when_first_used():
        pass
    with pytest.raises(RuntimeError), models_built_when_first_used():
        raise RuntimeError("an import failed")

    class Later(BaseModel):
        x: int

    assert BaseModel.model_config is config
    assert BaseModel.__dict__["model_rebuild"] is rebuild
    assert Later.__pydantic_complete__ is True


def test_building_the_deferred_models_builds_every_one_waiting_for_its_first_use() -> None:
    with models_built_when_first_used():
        deferred = define_tree()

        class Leaf(deferred):  # type: ignore[valid-type,misc]
            colour: str = "green"

    build_deferred_models()

    assert deferred.__pydantic_complete__ is True
    assert Leaf.__pydantic_complete__ is True
    assert Leaf.model_validate(VALID).colour == "green"


def test_a_left_out_module_fails_to_import_at_once_and_an_installed_one_is_untouched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cold_start, "LEFT_OUT", ("serving.not_shipped", "serving.limits"))
    monkeypatch.delitem(sys.modules, "serving.not_shipped", raising=False)

    record_left_out_modules()

    assert sys.modules["serving.not_shipped"] is None
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("serving.not_shipped")
    assert importlib.import_module("serving.limits").MAX_INSTANCES > 0
    monkeypatch.delitem(sys.modules, "serving.not_shipped")
