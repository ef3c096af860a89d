"""LangChain's standard unit tests for chat models, run against SCOPERouter over fake candidates."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fixtures_langchain import make_candidates, make_router
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_scope import SCOPERouter


@lru_cache(maxsize=1)
def _params() -> dict[str, Any]:
    return {"candidates": make_candidates(), "router": make_router()}


class TestSCOPERouterStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[SCOPERouter]:
        return SCOPERouter

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return dict(_params())

    @property
    def returns_usage_metadata(self) -> bool:
        return True  # the chosen candidate's usage_metadata is passed through unchanged

    @property
    def supports_model_override(self) -> bool:
        return True  # invoke(..., model="name") forces that candidate (still budget-checked)
