"""RAG pipelines over stand-in models that bill like providers, for the budget tests and
``benchmarks/budget_pipelines.py``.

- a corpus of 30 documents (math, code, trivia; 60 to 560 words each, so three retrieved chunks
  make prompts of ~150 to ~2,000 tokens) and 200 questions about them;
- `BillingChat` (LangChain) and `BillingLLM` (LlamaIndex, a chat model): answer in a set number of
  words and report token usage the way a provider bills it: the tokens they received (counted
  with the router's rule) and produced, times ``bill`` (a factor drawn uniformly from a range,
  seeded; (1, 1) bills exactly what was used, (1, 3) up to three times it);
- `langchain_rag_chain`: keyword retriever + "stuff" prompt + `SCOPERouter` + parser;
- `llamaindex_rag_engine`: a `VectorStoreIndex` (hashed bag-of-words embedding) queried with
  ``response_mode`` "compact" or "refine", three chunks, `SCOPELLM` as the LLM.

Only the public API of the library is used, so the benchmark runs the same pipelines against
older versions of it.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnablePassthrough
from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.schema import TextNode
from pydantic import Field, PrivateAttr

from scope_shared.tokens import approx_token_count

TOPICS = ("math", "code", "trivia")
WORDS = "alpha beta gamma delta sigma lambda vector matrix string array loop river mountain city".split()
#: words each stand-in answers with (within the toy history's expected output tokens: 50/100/400)
ANSWER_WORDS = {"cheap": 30, "mid": 60, "strong": 240}


def _doc(topic: str, i: int) -> str:
    rng = random.Random(f"{topic}-{i}")
    n = 60 + 500 * i // 9  # 60 ... 560 words
    return f"{topic} document {i}: " + " ".join(rng.choice(WORDS) for _ in range(n))


DOCS = [_doc(t, i) for t in TOPICS for i in range(10)]
QUERIES = [
    f"{TOPICS[k % 3]} question {k}: what does document {k % 10} say about {WORDS[k % len(WORDS)]}?"
    for k in range(200)
]


def _text_of(content: Any) -> str:
    return content if isinstance(content, str) else str(content)


def _billed(rng: random.Random, bill: tuple[float, float], tokens: int) -> int:
    return int(round(tokens * rng.uniform(*bill)))


# ---------------------------------------------------------------- LangChain
class BillingChat(BaseChatModel):
    """A stand-in chat model that reports usage like a provider (see the module docstring)."""

    label: str
    words: int = 30
    bill: tuple[float, float] = (1.0, 1.0)
    seed: int = 0
    calls: int = 0
    _rng: random.Random = PrivateAttr()

    def model_post_init(self, __context: Any) -> None:
        self._rng = random.Random(f"{self.label}-{self.seed}")

    @property
    def _llm_type(self) -> str:
        return "billing-stand-in"

    def _answer(self, messages: list[BaseMessage]) -> tuple[list[str], dict[str, int]]:
        self.calls += 1
        words = [f"{self.label}:"] + [WORDS[i % len(WORDS)] for i in range(self.words)]
        received = sum(approx_token_count(_text_of(m.content)) for m in messages)
        produced = approx_token_count(" ".join(words))
        i, o = _billed(self._rng, self.bill, received), _billed(self._rng, self.bill, produced)
        return words, {"input_tokens": i, "output_tokens": o, "total_tokens": i + o}

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
        words, usage = self._answer(messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=" ".join(words), usage_metadata=usage))])

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Iterator[ChatGenerationChunk]:
        words, usage = self._answer(messages)
        for n, w in enumerate(words):
            last = n == len(words) - 1
            chunk = AIMessageChunk(content=w if n == 0 else " " + w, usage_metadata=usage if last else None)
            yield ChatGenerationChunk(message=chunk)


def billing_chats(bill: tuple[float, float] = (1.0, 1.0), seed: int = 0) -> dict[str, BillingChat]:
    return {m: BillingChat(label=m, words=ANSWER_WORDS[m], bill=bill, seed=seed) for m in ANSWER_WORDS}


class KeywordRetriever(BaseRetriever):
    """The ``k`` documents sharing most words with the question (topic words count triple)."""

    k: int = 3

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        q = set(re.findall(r"\w+", query.lower()))

        def score(doc: str) -> tuple[int, str]:
            words = re.findall(r"\w+", doc.lower())
            return (len(q & set(words)) + 2 * sum(w in q for w in words[:3]), doc)

        return [Document(page_content=d) for d in sorted(DOCS, key=score, reverse=True)[: self.k]]


STUFF_PROMPT = ChatPromptTemplate.from_messages(
    [("system", "Answer the question using only this context:\n\n{context}"), ("human", "{question}")]
)


def langchain_rag_chain(llm: Any) -> Any:
    """retriever + stuff prompt + ``llm`` + parser: ``chain.invoke(question)``."""
    join = lambda docs: "\n\n".join(d.page_content for d in docs)  # noqa: E731
    return {"context": KeywordRetriever() | join, "question": RunnablePassthrough()} | STUFF_PROMPT | llm | StrOutputParser()


# ---------------------------------------------------------------- LlamaIndex
class HashEmbedding(BaseEmbedding):
    """Bag of hashed words, normalised: deterministic and offline."""

    dim: int = 64

    def _vector(self, text: str) -> list[float]:
        v = np.zeros(self.dim)
        for w in re.findall(r"\w+", text.lower()):
            v[int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        return (v / (np.linalg.norm(v) or 1.0)).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)


class BillingLLM(CustomLLM):
    """A stand-in LlamaIndex chat model that reports usage like a provider."""

    label: str
    words: int = 30
    bill: tuple[float, float] = (1.0, 1.0)
    seed: int = 0
    calls: int = 0
    prompts: list[int] = Field(default_factory=list)  # tokens received per call
    _rng: random.Random = PrivateAttr()

    def model_post_init(self, __context: Any) -> None:
        self._rng = random.Random(f"{self.label}-{self.seed}")

    @classmethod
    def class_name(cls) -> str:
        return "BillingLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.label, context_window=4096, num_output=256, is_chat_model=True)

    def _answer(self, received_text: str) -> tuple[list[str], dict[str, int]]:
        self.calls += 1
        words = [f"[{self.label}]"] + [WORDS[i % len(WORDS)] for i in range(self.words)]
        received = approx_token_count(received_text)
        self.prompts.append(received)
        produced = approx_token_count(" ".join(words))
        return words, {
            "prompt_tokens": _billed(self._rng, self.bill, received),
            "completion_tokens": _billed(self._rng, self.bill, produced),
        }

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        words, usage = self._answer("\n".join(m.content or "" for m in messages))
        return ChatResponse(
            message=ChatMessage(role=MessageRole.ASSISTANT, content=" ".join(words)), additional_kwargs=usage
        )

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        words, usage = self._answer("\n".join(m.content or "" for m in messages))

        def gen() -> ChatResponseGen:
            text = ""
            for n, w in enumerate(words):
                delta = w if n == 0 else " " + w
                text += delta
                last = n == len(words) - 1
                yield ChatResponse(
                    message=ChatMessage(role=MessageRole.ASSISTANT, content=text),
                    delta=delta,
                    additional_kwargs=usage if last else {},  # usage arrives with the last chunk
                )

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        words, usage = self._answer(prompt)
        return CompletionResponse(text=" ".join(words), additional_kwargs=usage)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        response = self.complete(prompt, formatted=formatted, **kwargs)

        def gen() -> CompletionResponseGen:
            yield response

        return gen()


def billing_llms(bill: tuple[float, float] = (1.0, 1.0), seed: int = 0) -> dict[str, BillingLLM]:
    return {m: BillingLLM(label=m, words=ANSWER_WORDS[m], bill=bill, seed=seed) for m in ANSWER_WORDS}


_INDEX: VectorStoreIndex | None = None


def rag_index() -> VectorStoreIndex:
    """The corpus as a vector index (built once)."""
    global _INDEX
    if _INDEX is None:
        _INDEX = VectorStoreIndex([TextNode(text=d, id_=f"doc-{i}") for i, d in enumerate(DOCS)], embed_model=HashEmbedding())
    return _INDEX


def llamaindex_rag_engine(llm: Any, response_mode: str = "compact", **kwargs: Any) -> Any:
    """A query engine over the corpus: three chunks, ``response_mode`` "compact" or "refine"."""
    return rag_index().as_query_engine(llm=llm, response_mode=response_mode, similarity_top_k=3, **kwargs)
