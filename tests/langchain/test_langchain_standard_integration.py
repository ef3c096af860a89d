"""LangChain's standard *integration* tests for chat models, run against SCOPERouter over local
scripted candidates (`fixtures_langchain.ScriptedChat`): everything of ours runs for real, only the
called models are scripted. LangChain itself skips what the scripted candidates cannot stand in
for: image, PDF and audio inputs (their test data is fetched from the network), Anthropic-format
inputs (provider-specific), and the stream-time benchmark (needs VCR cassettes of a real provider)."""

from __future__ import annotations

from typing import Any

from fixtures_langchain import make_candidates, make_router
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_scope import SCOPERouter

class TestSCOPERouterIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[SCOPERouter]:
        return SCOPERouter

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"candidates": make_candidates(), "router": make_router()}

    @property
    def returns_usage_metadata(self) -> bool:
        return True  # the chosen candidate's usage_metadata is passed through

    @property
    def supports_model_override(self) -> bool:
        return True  # invoke(..., model="strong") forces that candidate

    @property
    def model_override_value(self) -> str:
        return "strong"

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True
