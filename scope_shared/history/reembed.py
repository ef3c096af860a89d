"""A history belongs to the embedder that made its vectors: check that, and re-embed when it changes.

Vectors of two embedders are not comparable (even at the same dimension), so a router refuses a
history recorded by another embedder (`check_embedder`); `reembed` makes a copy of a history with every
question embedded anew, outcomes, cards and feedback offsets unchanged (``scope history reembed``);
`tuning_data` hands a history's questions and outcomes to the routing-tuned embedder's training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from scope_shared.embedders import Embedder, as_embedder
from scope_shared.embedders.tuning import TuningData
from scope_shared.errors import EmbedderError, ScopeError
from scope_shared.history.history import History


def embedder_for(history: History, embedder: Embedder | Any = None) -> Embedder:
    """The embedder to query ``history`` with, checked (`check_embedder`). ``None``: the embedder the
    history recorded when it is a named one (``"fast"``, ``"minilm"``), else the bundled default."""
    if embedder is None and history.embedder_name:
        from scope_shared.embedders.named import named_embedder

        embedder = named_embedder(history.embedder_name)
    if isinstance(embedder, str):
        _precheck_name(history, embedder)  # before a named embedder is loaded, or distilled
    emb = as_embedder(embedder)
    check_embedder(history, emb)
    return emb


def _precheck_name(history: History, spec: str) -> None:
    """Refuse an embedder given by name that cannot serve ``history``, from what its name tells."""
    from scope_shared.embedders.named import expected_record

    try:
        name, dim = expected_record(spec)
    except ScopeError:
        return  # not a name this library knows: the loader says what is wrong with it
    if dim is not None and dim != history.dim:
        raise EmbedderError(f"embedder {spec!r} gives {dim}-d vectors, the history holds {history.dim}-d ones"
                         + _hint_name(history, spec))
    if history.embedder_name is not None and history.embedder_name != name:
        raise EmbedderError(f"the history was embedded with {history.embedder_name!r}, not {name!r}: their vectors "
                         "are not comparable" + _hint_name(history, spec))


def _hint_name(history: History, spec: str) -> str:
    return (f"; use embedder={history.embedder_name!r}, or re-embed the history "
            f"('scope history reembed --history DIR --embedder {spec}')") if history.embedder_name else ""


def check_embedder(history: History, embedder: Embedder) -> None:
    """Raise `ScopeError` unless ``embedder`` can query ``history``: same dimension, and the same name
    where the history recorded one (histories built by hand without a name are checked by dimension)."""
    if embedder.dim != history.dim:
        raise EmbedderError(
            f"embedder {embedder.name!r} gives {embedder.dim}-d vectors, the history holds {history.dim}-d ones"
            + _hint(history, embedder)
        )
    if history.embedder_name is not None and history.embedder_name != embedder.name:
        raise EmbedderError(
            f"the history was embedded with {history.embedder_name!r}, not {embedder.name!r}: their vectors "
            "are not comparable" + _hint(history, embedder)
        )


def _hint(history: History, embedder: Embedder) -> str:
    return (f"; use embedder={history.embedder_name!r} or re-embed the history "
            f"('scope history reembed --history DIR --embedder NAME')") if history.embedder_name else ""


def reembed(history: History, embedder: Embedder, show_progress: bool = True) -> History:
    """A copy of ``history`` with every question embedded by ``embedder`` (same ids, outcomes, cards,
    index kind and ``feedback_applied``). An attached feedback log is not carried over: its records hold
    the old vectors, so the new history should start a log of its own."""
    n = len(history)
    texts = [history.text(i) for i in range(n)]
    vectors = embedder.embed(texts, show_progress=show_progress)
    out = History(embedder.dim, embedder.name, index=history.index.config())
    out.add_questions(texts, vectors, history.benchmarks)
    log = history.outcome_log
    if len(log):
        out.add_outcome_arrays(
            log.column("qid"), list(log.model_names), log.column("correct"), log.column("output_tokens"),
            input_tokens=log.column("input_tokens"), latency_s=log.column("latency_s"),
            source=list(log.source_names), model_codes=log.column("model"), source_codes=log.column("source"),
        )
    out.cards = dict(history.cards)
    out.feedback_applied = dict(history.feedback_applied)
    return out


def tuning_data(history: History, models: Sequence[str] | None = None) -> TuningData:
    """Questions, benchmarks, outcomes and output lengths of ``models`` (default: all of the history's)
    as `TuningData`; only these models' outcomes are read."""
    names = list(history.models if models is None else models)
    unknown = [m for m in names if m not in history.models]
    if unknown:
        raise EmbedderError(f"no outcomes of {', '.join(unknown)} in the history")
    n = len(history)
    scores = np.full((n, len(names)), np.nan)
    tokens = np.full((n, len(names)), np.nan)
    for j, m in enumerate(names):
        arr = history.model_arrays(m)
        scores[arr.ids, j] = arr.scores
        tokens[arr.ids, j] = arr.tokens
    return TuningData(texts=[history.text(i) for i in range(n)], scores=scores,
                      output_tokens=tokens if np.isfinite(tokens).any() else None,
                      groups=list(history.benchmarks), models=names)
