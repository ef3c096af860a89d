"""Growing and trimming a history by model, without re-embedding what it already holds.

- `select_models`: a new history with the same questions (same ids, same vectors) and only some
  models' outcomes, so a router over your own models needs no one else's data.
- `add_model_outcomes`: a model's outcomes by question text; texts the history holds keep their id
  and vector, only new texts are embedded (and only then is an embedder needed). `Router.add_model`
  is this plus making the model a candidate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from scope_shared.cards import ModelCard, Outcome
from scope_shared.errors import EmbedderError, HistoryDataError, InvalidCardError, UnknownModelError
from scope_shared.query import validate_queries

if TYPE_CHECKING:
    from scope_shared.embedders import Embedder
    from scope_shared.history.history import History


def select_models(history: "History", models: Iterable[str]) -> "History":
    """A copy of ``history`` keeping every question but only the outcomes (and cards) of ``models``."""
    from scope_shared.history.history import History

    keep = list(dict.fromkeys(models))
    unknown = [m for m in keep if m not in history.models]
    if unknown:
        raise UnknownModelError(f"model {unknown[0]!r} has no outcomes in the history (known: {', '.join(history.models)})")
    out = History(history.dim, history.embedder_name, index=history.index.config())
    n = len(history)
    if n:
        out.add_questions([history.text(i) for i in range(n)], history.embeddings, history.benchmarks)
    log = history.outcome_log
    names = log.model_names
    codes = log.column("model").astype(np.int64)
    rows = np.flatnonzero(np.isin(codes, [names.index(m) for m in keep]))
    new_code = np.full(len(names), -1, np.int64)
    for i, m in enumerate(keep):
        new_code[names.index(m)] = i
    if len(rows):
        out.add_outcome_arrays(
            log.column("qid")[rows], keep, log.column("correct")[rows], log.column("output_tokens")[rows],
            input_tokens=log.column("input_tokens")[rows], latency_s=log.column("latency_s")[rows],
            source=log.source_names, model_codes=new_code[codes[rows]], source_codes=log.column("source")[rows].astype(np.int64),
        )
    out.cards = {m: c for m, c in history.cards.items() if m in keep}
    out.feedback_applied = dict(history.feedback_applied)
    return out


def add_model_outcomes(
    history: "History",
    card: ModelCard | Mapping[str, Any],
    outcomes: Mapping[str, Outcome | Mapping[str, Any] | float],
    embedder: "Embedder | None" = None,
) -> list[int]:
    """Record ``card``'s outcomes (``{question text: Outcome | dict | score}``); returns question ids.

    Only texts new to the history are embedded (with ``embedder``, required only then); the card
    joins ``history.cards``.
    """
    if not isinstance(card, (ModelCard, Mapping)):
        raise InvalidCardError(f"a model card must be a ModelCard or a dict, got {type(card).__name__}")
    card = card if isinstance(card, ModelCard) else ModelCard.create(**{str(k): v for k, v in card.items()})
    if not isinstance(outcomes, Mapping) or not outcomes:
        raise HistoryDataError(f"model {card.name!r} needs a mapping of question text -> outcome (at least one) to join")
    texts = validate_queries(list(outcomes))
    outs = []
    for t in texts:
        o = outcomes[t]
        if isinstance(o, (int, float)):
            o = {"correct": float(o)}
        if isinstance(o, Outcome):
            o = o.model_dump()
        if not isinstance(o, Mapping):
            raise HistoryDataError(f"outcome for {t[:60]!r} must be an Outcome, a dict or a score, got {type(o).__name__}")
        outs.append(Outcome.create(**{**dict(o), "model": card.name}))
    new = list(dict.fromkeys(t for t in texts if history.question_id(t) is None))
    if new:
        if embedder is None:
            raise EmbedderError(f"{len(new)} question(s) are not in the history, e.g. {new[0][:60]!r}: embedding them needs an embedder")
        history.add_questions(new, embedder.embed(new, show_progress=len(new) > 256))
    ids = []
    for t, o in zip(texts, outs):
        qid = history.question_id(t)
        assert qid is not None
        history.add_outcomes(qid, [o])
        ids.append(qid)
    history.cards[card.name] = card
    return ids
