"""URLs wherever a ledger or history is taken: the LangChain and LlamaIndex integrations and the CLI,
on a real PostgreSQL server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import CARDS, toy_embedder, toy_history
from fixtures_langchain import make_candidates
from fixtures_llamaindex import named_llms
from langchain_core.messages import HumanMessage

from langchain_scope import SCOPERouter
from langchain_scope.budget import with_budget
from llamaindex_scope import SCOPELLM, scope_budget
from scope_shared import History, Ledger, Router, ScopeError
from scope_shared.errors import InvalidBudgetError
from scope_shared.budget.nesting import check_ledger
from scope_shared.budget.shared import close_connected as close_connected_ledgers
from scope_shared.history.shared import close_connected as close_connected_histories
from scope_shared.cli import load_history_arg
from scope_shared.cli import main as scope_main
from scope_shared.history.postgres_transfer import import_directory


@pytest.fixture
def fleet_url(pg_url, tmp_path) -> Iterator[str]:
    """A database with the toy history as ``default`` and a $1 raise-mode ``default`` budget."""
    toy_history().save(tmp_path / "toy")
    import_directory(tmp_path / "toy", pg_url, follow=False).close()
    Ledger.connect(pg_url, budget=1.0, mode="raise").close()
    yield pg_url
    close_connected_ledgers()
    close_connected_histories()


def test_langchain_router_on_a_shared_history_and_budget_by_url(fleet_url):
    llm = SCOPERouter(candidates=make_candidates(), cards=CARDS, history=fleet_url, embedder=toy_embedder(),
                      ledger=fleet_url)
    reply = llm.invoke([HumanMessage("code question number 4")])
    cost = reply.response_metadata["scope"]["cost"]
    assert cost > 0 and Ledger.connect(fleet_url).spent == pytest.approx(cost)
    per_call = llm.with_config(configurable={"scope_ledger": fleet_url})  # the same budget, by URL, per call
    per_call.invoke([HumanMessage("trivia question number 2")])
    assert Ledger.connect(fleet_url).calls == 2
    llm.record_feedback(reply, correct=0.0)
    other = History.connect(fleet_url, follow=False)  # another replica sees the feedback
    assert [r.outcome.model for r in other.records if r.outcome.source == "feedback"] == [reply.response_metadata["scope"]["model"]]


def test_llamaindex_llm_and_budget_blocks_take_urls(fleet_url):
    router = Router(CARDS, fleet_url, embedder=toy_embedder())
    llm = SCOPELLM(router, named_llms(), ledger=fleet_url)
    llm.complete("trivia question number 1")
    shared = Ledger.connect(fleet_url)
    assert shared.calls == 1
    with scope_budget(ledger=fleet_url):
        SCOPELLM(router, named_llms()).complete("math question number 3")
    assert shared.calls == 2 and shared.spent > 0


def test_a_url_means_one_connection_and_other_values_are_refused(fleet_url):
    assert check_ledger(fleet_url) is check_ledger(fleet_url)
    with pytest.raises(InvalidBudgetError, match="Ledger or a postgresql:// URL, got str"):
        check_ledger("sqlite:///x.db")
    with pytest.raises(ScopeError, match="History or a postgresql:// URL"):
        Router(CARDS, "/some/dir", embedder=toy_embedder())


def test_cli_imports_exports_routes_and_manages_budgets(fleet_url, tmp_path, capsys):
    h = toy_history()
    h.save(tmp_path / "dir")
    assert scope_main(["history", "import", str(tmp_path / "dir"), fleet_url, "--name", "cli"]) == 0
    assert "60 questions, 180 outcomes" in capsys.readouterr().out
    assert scope_main(["history", "info", fleet_url, "--name", "cli"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["questions"] == len(h) and info["shared"]["name"] == "cli"
    assert scope_main(["history", "export", fleet_url, str(tmp_path / "out"), "--name", "cli"]) == 0
    assert list(History.load(tmp_path / "out").records) == list(h.records)
    assert len(load_history_arg(fleet_url, "cli")) == len(h)  # what scope route --history URL reads
    assert scope_main(["budget", "create", fleet_url, "team-a", "--budget", "5", "--period", "daily"]) == 0
    assert scope_main(["budget", "show", fleet_url, "team-a"]) == 0
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert shown["budget"] == 5.0 and shown["spent"] == 0
    assert scope_main(["budget", "show", fleet_url, "nope"]) == 2
    assert "no budget named 'nope'" in capsys.readouterr().err
    assert scope_main(["history", "info", "postgresql://scope@127.0.0.1:1/x"]) == 2
    assert "cannot connect" in capsys.readouterr().err


def test_budgets_nest_across_stores_a_chain_in_memory_inside_a_shared_team(fleet_url):
    team = Ledger.connect(fleet_url, "team", budget=0.5)
    chain = Ledger(0.2, name="chain", parent=team)  # this process's chain budget, inside the fleet's team budget
    router = Router(CARDS, fleet_url, embedder=toy_embedder())
    SCOPELLM(router, named_llms(), ledger=chain).complete("trivia question number 1")
    assert chain.calls == team.calls == 1 and chain.spent > 0
    assert Ledger.connect(fleet_url, "team").spent == pytest.approx(chain.spent)  # as every replica sees it
    llm = SCOPERouter(candidates=make_candidates(), router=router)
    with_budget(llm, fleet_url).invoke([HumanMessage("code question number 2")])  # nested by URL
    assert Ledger.connect(fleet_url).calls == 1
