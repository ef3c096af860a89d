"""The routing step as a traced run.

A chat model's own run cannot hold child runs (`CallbackManagerForLLMRun` has no ``get_child``),
so `SCOPERouter` opens a *chain* run named after itself for each call, with the decision in that
run's metadata (chosen model, knob, expected cost, ranking, why), and calls the chosen candidate
under it: tracers (LangSmith, console, ``astream_events``) show why a model was picked, and the
candidate's own chat-model run nests under the routing run. The run's outputs carry the full
``response_metadata["scope"]`` record, failed candidates included.

The run starts before any candidate answers, so its metadata names the chosen model
(``scope_model``, ``scope_chosen``); when a fallback answers instead, `end_run` rewrites
``scope_model`` to the model that answered (and adds ``scope_failed``) on every tracer that still
holds the run (LangSmith's and any other ``BaseTracer``) before ending it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager
from langchain_core.callbacks.manager import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import patch_config

from scope_shared.calls import CallRecord


def decision_metadata(record: CallRecord) -> dict[str, Any]:
    """Flat, JSON-friendly tracing metadata for a routing decision."""
    d = record.decision
    return {
        "scope_call_id": record.call_id,
        "scope_model": d.model,
        "scope_chosen": d.model,
        "scope_knob": dict(d.knob),
        "scope_expected_cost": d.chosen.expected_cost,
        "scope_p_correct": d.chosen.p_correct,
        "scope_ranking": list(d.ranking),
        "scope_explanation": d.explanation,
        "scope_budget_left": d.budget_left,
        "scope_ledger": record.ledger_name,
    }


def _configure_args(config: RunnableConfig, owner: Any, record: CallRecord) -> dict[str, Any]:
    return {
        "inheritable_callbacks": config.get("callbacks"),
        "local_callbacks": owner.callbacks,
        "verbose": bool(owner.verbose),
        "inheritable_tags": config.get("tags"),
        "local_tags": owner.tags,
        "inheritable_metadata": config.get("metadata"),
        "local_metadata": {**(owner.metadata or {}), **decision_metadata(record)},
    }


def _inputs(messages: Sequence[BaseMessage]) -> dict[str, Any]:
    return {"messages": list(messages)}


def start_run(
    owner: Any, config: RunnableConfig, messages: Sequence[BaseMessage], record: CallRecord
) -> tuple[CallbackManagerForChainRun, RunnableConfig]:
    """Open the routing run (its id is the call id); return it and the config for the candidate."""
    manager = CallbackManager.configure(**_configure_args(config, owner, record))
    run = manager.on_chain_start(
        None,
        _inputs(messages),
        run_id=UUID(record.call_id),
        name=config.get("run_name") or owner.get_name(),
    )
    return run, patch_config(config, callbacks=run.get_child())


async def astart_run(
    owner: Any, config: RunnableConfig, messages: Sequence[BaseMessage], record: CallRecord
) -> tuple[AsyncCallbackManagerForChainRun, RunnableConfig]:
    """Async `start_run`."""
    manager = AsyncCallbackManager.configure(**_configure_args(config, owner, record))
    run = await manager.on_chain_start(
        None,
        _inputs(messages),
        run_id=UUID(record.call_id),
        name=config.get("run_name") or owner.get_name(),
    )
    return run, patch_config(config, callbacks=run.get_child())


def outputs(message: Any, record: CallRecord) -> dict[str, Any]:
    """What the routing run ends with."""
    return {"output": message, "scope": record.metadata()}


def _answered(run: Any, record: CallRecord) -> None:
    """Name the model that answered in the metadata tracers keep for the run (a fallback may have)."""
    if record.model is None or record.model == record.decision.model:
        return
    update = {"scope_model": record.model, "scope_failed": [a.model for a in record.failed]}
    for handler in {id(h): h for h in [*run.handlers, *run.inheritable_handlers]}.values():
        traced = getattr(handler, "run_map", {}).get(str(run.run_id))
        if traced is not None and hasattr(traced, "add_metadata"):
            traced.add_metadata(update)


def end_run(run: CallbackManagerForChainRun, record: CallRecord, output: Any) -> None:
    """End the routing run: metadata names the model that answered; outputs carry the record."""
    _answered(run, record)
    run.on_chain_end(outputs(output, record))


async def aend_run(run: AsyncCallbackManagerForChainRun, record: CallRecord, output: Any) -> None:
    """Async `end_run`."""
    _answered(run, record)
    await run.on_chain_end(outputs(output, record))
