"""The framework-neutral routing-text rule: scaffolds, turns, agent steps, and the ways to say what to route on."""

from __future__ import annotations

import asyncio
import threading

import pytest

from scope_shared.errors import InvalidQueryError
from scope_shared.routing.routing_text import (
    RoutingTextRule,
    Turn,
    choose,
    current_override,
    marked_text,
    route_on,
)
from scope_shared.routing.scaffolds import Scaffold, ScaffoldSet

QA = "Context information is below.\n-----\n{context_str}\n-----\nAnswer the query.\nQuery: {query_str}\nAnswer: "
REFINE_TURN = "We have the opportunity to refine the existing answer with more context:\n{context_str}\nRefine it."
SCHEMA = "Here's a JSON schema to follow:\n{schema}\n\nOutput a valid JSON object but do not repeat the schema."


def scaffolds() -> ScaffoldSet:
    return ScaffoldSet([
        Scaffold.from_template("qa", QA),
        Scaffold.from_template("refine turn", REFINE_TURN, kind="scaffold"),
        Scaffold.from_template("schema", SCHEMA, kind="block"),
    ])


def test_the_question_is_found_inside_a_template_even_when_the_context_repeats_its_labels():
    context = "Query: not this one\nAnswer: nor this\n" * 3
    prompt = QA.format(context_str=context, query_str="What is 2+2?\nShow the steps.")
    ex = scaffolds().extract(prompt)
    assert ex.text == "What is 2+2?\nShow the steps." and ex.template == "qa"


def test_whitespace_is_matched_loosely_and_unrelated_text_is_left_alone():
    prompt = QA.format(context_str="ctx", query_str="Why is the sky blue?").replace("\n", "  \n ")
    assert scaffolds().extract(prompt).text == "Why is the sky blue?"
    assert scaffolds().extract("Query: a question of my own").text == "Query: a question of my own"


def test_a_schema_block_is_removed_wherever_it_is():
    block = SCHEMA.format(schema='{"properties": {"a": {"type": "string"}}}')
    assert scaffolds().extract(f"Name a colour.\n\n{block}").text == "Name a colour."
    assert scaffolds().extract(f"{block}\nName a colour.").text == "Name a colour."


def test_templates_without_enough_literal_text_or_a_question_are_not_compiled():
    assert Scaffold.from_template("bare", "{question}") is None
    assert Scaffold.from_template("no question", "Summarise this long document please:\n{text}") is None
    jinja = Scaffold.from_template(
        "rich", "Context:\n{% for m in msgs %}{{ m.text }}\n{% endfor %}\nQuery: {{ query_str }}\nAnswer:", syntax="jinja2"
    )
    assert jinja is not None and ScaffoldSet([jinja]).extract("Context:\none\ntwo\n\nQuery: Who?\nAnswer:").text == "Who?"


def rule(**kw) -> RoutingTextRule:
    return RoutingTextRule(scaffolds(), **kw)


def test_system_prompts_are_dropped_and_the_last_user_question_wins():
    turns = [Turn("system", "You are a pirate."), Turn("user", "first"), Turn("assistant", "ok"), Turn("user", "second?")]
    r = rule().of_turns(turns)
    assert r.text == "second?" and r.source == "question"


def test_a_refine_turn_is_scaffolding_the_question_is_further_up():
    turns = [
        Turn("user", QA.format(context_str="c1", query_str="Who wrote Hamlet?")),
        Turn("assistant", "Shakespeare"),
        Turn("user", REFINE_TURN.format(context_str="c2")),
    ]
    assert rule().of_turns(turns).text == "Who wrote Hamlet?"


def test_an_agent_step_is_routed_on_its_task_and_latest_tool_results():
    turns = [
        Turn("system", "Use tools."),
        Turn("user", "What is the weather in Paris?"),
        Turn("assistant", "get_weather({'city': 'Paris'})"),
        Turn("tool", "old result"),
        Turn("assistant", "get_forecast({'city': 'Paris'})"),
        Turn("tool", "rain " * 400),
        Turn("tool", "wind"),
    ]
    r = rule(tool_chars=100).of_turns(turns)
    task, tools = r.text.split("\n\n", 1)
    assert task == "What is the weather in Paris?" and tools.startswith("rain") and len(tools) <= 100
    assert "old result" not in r.text and r.source.endswith("latest tool turn")
    # once the assistant has answered and the user asks again, the new question alone
    assert rule().of_turns([*turns, Turn("assistant", "Rainy."), Turn("user", "And tomorrow?")]).text == "And tomorrow?"


def test_earlier_turns_only_on_request():
    turns = [Turn("user", "Name two primes."), Turn("assistant", "2 and 3"), Turn("user", "and the second one?")]
    assert rule().of_turns(turns).text == "and the second one?"
    assert rule(earlier_chars=100).of_turns(turns).text == "user: Name two primes.\nassistant: 2 and 3\nand the second one?"


def test_without_a_user_turn_the_system_prompt_is_the_task_scaffolding_removed():
    block = SCHEMA.format(schema="{}")
    r = rule().of_turns([Turn("system", f"Extract the invoice total.\n\n{block}")])
    assert r.text == "Extract the invoice total." and r.source.startswith("no user turn")


@pytest.mark.parametrize(
    "turns,held",
    [
        ([Turn("user", "")], "1 user without text"),  # image-only: its text part is empty
        ([Turn("system", "Describe images."), Turn("user", "")], "1 system, 1 user without text"),
        ([Turn("assistant", "Hello!")], "1 assistant"),
        ([Turn("user", "  ")], "1 user without text"),
        ([], "no messages"),
    ],
)
def test_a_chat_without_user_text_is_refused_naming_what_it_holds(turns, held):
    with pytest.raises(InvalidQueryError, match="no user text to route on") as err:
        rule().of_turns(turns)
    assert held in str(err.value)


def test_an_image_only_follow_up_routes_on_the_question_before_it():
    turns = [Turn("user", "What animal is in these photos?"), Turn("assistant", "A cat."), Turn("user", "")]
    assert rule().of_turns(turns).text == "What animal is in these photos?"


def test_a_marked_turn_wins_and_markers_are_checked():
    turns = [Turn("user", "long prompt", marked=marked_text(True, "long prompt")), Turn("user", "other")]
    assert rule().of_turns(turns).text == "long prompt"
    assert marked_text("short", "long") == "short" and marked_text(None, "x") is None
    with pytest.raises(InvalidQueryError):
        marked_text(3, "x")


def test_precedence_call_then_marked_then_block_then_callable_then_rule():
    calls = []

    def default():
        calls.append("rule")
        return rule().of_prompt("the prompt")

    assert choose(default, explicit="given").source == "given for the call"
    assert choose(default, marked="marked").text == "marked"
    with route_on("block text"):
        assert choose(default, custom=lambda: "custom").text == "block text"
    assert choose(default, custom=lambda: "custom").text == "custom"
    assert choose(default, custom=lambda: None).text == "the prompt"
    assert calls == ["rule"]  # the rule ran only when nothing else said
    with pytest.raises(InvalidQueryError):
        choose(default, explicit=42)
    with pytest.raises(InvalidQueryError):
        choose(default, custom=lambda: 42)


async def test_route_on_blocks_are_local_to_their_thread_and_task():
    seen: dict[str, str | None] = {}

    def other_thread():
        seen["thread"] = current_override()

    async def task(text: str) -> str | None:
        with route_on(text):
            await asyncio.sleep(0)
            return current_override()

    with route_on("outer"):
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert await asyncio.gather(task("a"), task("b")) == ["a", "b"]
        assert current_override() == "outer"
    assert seen["thread"] is None and current_override() is None
    with pytest.raises(InvalidQueryError):
        with route_on(" "):
            pass
