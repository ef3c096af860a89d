"""Output-length priors of the bundled pack (llmrouter-9 has no output-token counts).

Derived by ``benchmarks/length_priors.py`` from real provider token usage in RouterArena's cached
results (Apache-2.0; claude-3-haiku and gemini-2.0-flash): the median output tokens over benchmarks of
the same answer format (multiple choice; grade-school maths; competition maths; code; open and trivia
QA). Every pack card carries them (``ModelCard.output_tokens_by_benchmark``); commongen and
agentverse-logicgrid have no matching data and stay at the assumed 256 tokens. Only these aggregate
numbers are shipped, and only from licensed data.
"""

from __future__ import annotations

from collections.abc import Mapping

from scope_shared.cards import ModelCard

LLMROUTER9_OUTPUT_TOKENS: dict[str, float] = {
    "agentverse-mgsm": 82.0, "arc_challenge": 66.0, "commonsense_qa": 66.0, "gpqa": 66.0, "gsm8k": 82.0,
    "human_eval": 287.0, "math": 148.0, "mbpp": 287.0, "mmlu": 66.0, "natural_qa": 62.0,
    "openbook_qa": 66.0, "trivia_qa": 62.0,
}
NOTE = (
    "llmrouter-9 has no output-token counts. Output lengths: per-benchmark priors on each card "
    "(median real output tokens of claude-3-haiku and gemini-2.0-flash on benchmarks of the same answer "
    "format in RouterArena's cached results, Apache-2.0: benchmarks/length_priors.py), else 256 assumed "
    "(commongen, agentverse-logicgrid); input tokens ~ chars/4. Costs computed from them are estimates."
)


def with_length_priors(cards: Mapping[str, ModelCard], priors: Mapping[str, float] | None = None) -> dict[str, ModelCard]:
    """The cards, each carrying the per-benchmark output-length priors (default: llmrouter-9's)."""
    table = dict(LLMROUTER9_OUTPUT_TOKENS if priors is None else priors)
    return {name: card.model_copy(update={"output_tokens_by_benchmark": dict(sorted(table.items()))})
            for name, card in cards.items()}
