"""`SCOPESelector`: a LlamaIndex selector that picks, among choices tied to models, the one SCOPE routes to.

Each choice (a query engine or retriever wrapped as a tool, e.g. one engine per LLM tier) is tied
to a model card, so to that model's history of outcomes. For a query, the router estimates every
tied model's chance of success and cost, applies the knob in force (and what is left of the
ledger), and the selector returns the choice of the chosen model, with the reason.

Budgets: the selector itself makes no LLM call and cannot see the prompt the chosen engine will
send (the retrieved context is built after the choice). So by default it charges nothing: the
decision still respects what is left of the budget, and the spending is charged where it happens,
by the engines' `SCOPELLM`s with their real cost (selector and LLM on one budget charge once; a
`RouterRetriever` selection, which calls no LLM, costs nothing). When the engines call LLMs that
SCOPE does not see, give ``engine_prompt_tokens``, an explicit estimate of the prompt each engine
sends: the choice is priced with it, and its expected cost is held and charged (flagged ``estimated``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.base_selector import BaseSelector, MultiSelection, SingleSelection
from llama_index.core.prompts.mixin import PromptDictType
from llama_index.core.schema import QueryBundle
from llama_index.core.tools.types import ToolMetadata

from llamaindex_scope.events import emit_routed, emit_settled
from scope_shared.arguments import check_keywords
from scope_shared.budget.nesting import LedgerLike
from scope_shared.budget.settings import Settings, settings_for_call
from scope_shared.calls import RoutedCall, note_call
from scope_shared.errors import (
    InvalidCardError,
    InvalidComponentError,
    InvalidSettingError,
    NoCandidatesError,
    UnknownModelError,
)
from scope_shared.routing.knobs import KnobLike
from scope_shared.routing.router import Router

ChoiceModels = Sequence[str] | Mapping[str | int, str] | None
#: the keywords `SCOPESelector` takes
_KEYWORDS = ("router", "choice_models", "knob", "max_cost", "tradeoff", "min_accuracy", "accuracy_margin",
             "alpha", "ledger", "engine_prompt_tokens", "charge_ledger")


class SCOPESelection(MultiSelection):
    """A single selection, plus SCOPE's account of the call in ``scope`` (call id, estimates, cost).

    `RouterQueryEngine` stores it in ``response.metadata["selector_result"]``.
    """

    scope: dict[str, Any] = {}

    @property
    def call_id(self) -> str:
        return str(self.scope["call_id"])


class SCOPESelector(BaseSelector):
    """Select the choice whose model SCOPE routes to, under the knob and ledger in force.

    Args:
        router: the SCOPE `Router` (its cards and history).
        choice_models: how choices map to models: a list aligned with the choices, or a mapping
            from choice name (``ToolMetadata.name``) or index to model name. ``None``: each
            choice's name is its model's name.
        knob / max_cost / tradeoff / min_accuracy / accuracy_margin / alpha: the knob for this
            pipeline (at most one; default: the router's). A ``scope_budget`` block overrides it
            (`scope_shared.budget.settings`).
        ledger: the pipeline's budget (optional; a ledger, or a ``postgresql://`` URL of a shared
            one); a ``scope_budget`` block overrides it.
        engine_prompt_tokens: an estimate of the prompt tokens the chosen engine sends its LLM
            (question, retrieved context, template); prices the choice (default: the query's own).
        charge_ledger: charge the chosen model's expected cost at selection time. Default (None):
            only when ``engine_prompt_tokens`` is given, i.e. when the engines' LLMs are not
            charging the budget themselves. True requires ``engine_prompt_tokens``.

    An unknown keyword raises `UnknownArgumentError` naming the closest valid one.
    """

    def __init__(
        self,
        router: Router,
        choice_models: ChoiceModels = None,
        *,
        knob: KnobLike | None = None,
        max_cost: float | None = None,
        tradeoff: float | None = None,
        min_accuracy: float | None = None,
        accuracy_margin: float | None = None,
        alpha: float | None = None,
        ledger: LedgerLike | str | None = None,
        engine_prompt_tokens: int | None = None,
        charge_ledger: bool | None = None,
        **unknown: Any,
    ) -> None:
        check_keywords(unknown, _KEYWORDS, type(self).__name__)
        if not isinstance(router, Router):
            raise InvalidComponentError(f"router must be a scope_shared.Router, got {type(router).__name__}")
        self._router = router
        self._choice_models = choice_models
        self._built = Settings.read(  # validated once
            knob=knob, max_cost=max_cost, tradeoff=tradeoff, min_accuracy=min_accuracy,
            accuracy_margin=accuracy_margin, alpha=alpha, ledger=ledger,
        )
        if engine_prompt_tokens is not None and (
            isinstance(engine_prompt_tokens, bool) or not isinstance(engine_prompt_tokens, int) or engine_prompt_tokens < 0
        ):
            raise InvalidSettingError(f"engine_prompt_tokens must be a whole number >= 0, got {engine_prompt_tokens!r}")
        if charge_ledger and engine_prompt_tokens is None:
            raise InvalidSettingError(
                "charge_ledger=True needs engine_prompt_tokens (an estimate of the prompt the chosen engine "
                "sends): a selection priced on the query alone would be held far too low"
            )
        self._engine_prompt_tokens = engine_prompt_tokens
        self._charge_ledger = engine_prompt_tokens is not None if charge_ledger is None else charge_ledger
        if isinstance(choice_models, Mapping):
            self._check_models(choice_models.values())
        elif choice_models is not None:
            self._check_models(list(choice_models))

    @classmethod
    def from_defaults(
        cls,
        router: Router,
        choice_models: ChoiceModels = None,
        **kwargs: Any,
    ) -> "SCOPESelector":
        """Build a selector (LlamaIndex's usual constructor name); same arguments as the class."""
        return cls(router, choice_models, **kwargs)

    @property
    def router(self) -> Router:
        return self._router

    # ---------------------------------------------------------------- prompts (none)
    def _get_prompts(self) -> dict[str, Any]:
        return {}

    def _update_prompts(self, prompts: PromptDictType) -> None:
        """No prompts: the selector asks no LLM."""

    # ---------------------------------------------------------------- mapping choices to models
    def _check_models(self, models: Any) -> None:
        for m in models:
            if m not in self._router.cards:
                raise UnknownModelError(
                    f"model {m!r} has no card in the router; cards are {', '.join(self._router.models)}"
                )

    def models_for(self, choices: Sequence[ToolMetadata]) -> list[str]:
        """The model tied to each choice; raise `InvalidCardError` for a choice without one."""
        if not choices:
            raise NoCandidatesError("no choices to select from")
        cm = self._choice_models
        out = []
        for i, choice in enumerate(choices):
            label = choice.name or f"#{i}"
            if cm is None:
                model = choice.name
            elif isinstance(cm, Mapping):
                model = cm.get(choice.name, cm.get(i)) if choice.name is not None else cm.get(i)
            else:
                if len(cm) != len(choices):
                    raise InvalidCardError(
                        f"{len(cm)} models given for {len(choices)} choices; give one model per choice"
                    )
                model = cm[i]
            if model is None or model not in self._router.cards:
                raise InvalidCardError(
                    f"choice {label!r} has no model card"
                    + ("" if model is None else f" ({model!r} is not among {', '.join(self._router.models)})")
                    + ": tie each choice to a model (choice_models=, or name the choice after its model)"
                )
            out.append(model)
        return out

    # ---------------------------------------------------------------- selecting
    def _select(self, choices: Sequence[ToolMetadata], query: QueryBundle) -> SCOPESelection:
        models = self.models_for(choices)
        settings = settings_for_call(built=self._built)
        call = RoutedCall.plan(
            self._router, query.query_str, settings, candidates=list(dict.fromkeys(models)),
            prompt_tokens=self._engine_prompt_tokens,
        )
        emit_routed(call.record, "selector")
        for model in call.models_to_try():
            record = call.succeeded_unseen(model, charge=self._charge_ledger)
            break
        else:
            raise call.all_failed()
        note_call(record)
        emit_settled(record, "selector", ledger=settings.budgets, cost_is_estimate=self._charge_ledger)
        index = models.index(model)
        reason = (
            f"choice {choices[index].name or index!r} -> model {call.decision.explanation} "
            f"[scope call {record.call_id}]"
        )
        meta = {**record.metadata(), "cost_is_estimate": self._charge_ledger, "choice_index": index}
        return SCOPESelection(selections=[SingleSelection(index=index, reason=reason)], scope=meta)

    async def _aselect(self, choices: Sequence[ToolMetadata], query: QueryBundle) -> SCOPESelection:
        # routing is CPU work (embed, nearest neighbours, policy): off the event loop; to_thread
        # copies the context, so the scope_budget block and the span stay in force
        return await asyncio.to_thread(self._select, choices, query)
