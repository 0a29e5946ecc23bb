"""What a cold start leaves for later, or out: work the first /predict response does not need.

- Pydantic models built when first used, not when defined. Defining a model builds its
  validator and serializer (its core schema) at once. FastAPI defines about forty models for the
  OpenAPI document as it is imported (`fastapi.openapi.models`, three of them rebuilt explicitly
  at the end of the module), which only /openapi.json, /docs and a 404's list of routes use:
  building them was about a fifth of the cold start. Pydantic's own `defer_build` setting leaves
  a model's build to its first use; `models_built_when_first_used` applies it to every model
  defined inside the block, so these are built by the first request that needs them, and behave
  exactly as built ones from then on. With SnapStart they are built before the snapshot instead
  (`build_deferred_models`), when it costs no request anything.
- Modules the build leaves out of the package (`LEFT_OUT`: build/slim.py deletes them) are
  recorded as absent, so that a library probing for one fails at once: FastAPI looks for
  pydantic's v1 layer for every field of every route (about eighty times at a cold start), and
  each failed import searched the package's path again.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from typing import Any

from pydantic import BaseModel, ConfigDict

# Never imported by the function and left out of its package; FastAPI imports pydantic's v1
# compatibility layer only to refuse v1 models, and treats its absence as "no v1 models".
LEFT_OUT = ("pydantic.v1",)


@contextmanager
def models_built_when_first_used() -> Iterator[None]:
    """Every pydantic model defined inside the block (e.g. by an import) is built on first use.

    Models inherit their configuration from their bases, so `defer_build` on `BaseModel`'s own
    configuration reaches every model defined meanwhile. An explicit `model_rebuild()` inside the
    block is left to first use too; pydantic's own rebuild on first use (which passes
    `raise_errors=False`) and a forced rebuild still build. Both are put back afterwards.
    """
    defaults, original = BaseModel.model_config, BaseModel.__dict__["model_rebuild"]

    def rebuild_on_first_use(
        cls: type[BaseModel], /, *, force: bool = False, raise_errors: bool = True, **options: Any
    ) -> bool | None:
        if cls.model_config.get("defer_build") and raise_errors and not force:
            return None
        # One frame deeper than pydantic expects: the namespace it resolves names in is its caller's.
        depth = options.pop("_parent_namespace_depth", 2) + 1
        rebuilt: bool | None = original.__func__(
            cls, force=force, raise_errors=raise_errors, _parent_namespace_depth=depth, **options
        )
        return rebuilt

    BaseModel.model_config = ConfigDict(**defaults, defer_build=True)
    BaseModel.model_rebuild = classmethod(rebuild_on_first_use)  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        BaseModel.model_config = defaults
        BaseModel.model_rebuild = original  # type: ignore[method-assign]


def build_deferred_models() -> None:
    """Build every pydantic model still waiting for its first use (`defer_build`, not yet used)."""
    pending = BaseModel.__subclasses__()
    while pending:
        model = pending.pop()
        pending += model.__subclasses__()
        if model.model_config.get("defer_build") and not model.__pydantic_complete__:
            model.model_rebuild()


def record_left_out_modules() -> None:
    """Record the modules of LEFT_OUT that cannot be imported as absent (`None` in sys.modules,
    which makes importing them fail at once); where one is installed, nothing changes."""
    for name in LEFT_OUT:
        if name not in sys.modules and find_spec(name) is None:
            # The import system's own marker for a module that is not there.
            sys.modules[name] = None  # type: ignore[assignment]
