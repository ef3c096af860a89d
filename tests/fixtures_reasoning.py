"""Shared fixtures for the reasoning-predictor tests: a tiny causal LM and tokenizer made offline."""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "Analysis: the anchors show the model is usually correct on arithmetic questions.",
    "Predicted Performance: {len: 120, correct: yes}",
    "Predicted Performance: {len: 480, correct: no}",
    "### Task ### Target Model ### Target Question ### Output: Example 1: Question: Performance:",
    "What is the capital of France? Solve 12 * 7. Which gas do plants absorb? yes no len correct",
]


def make_tiny_lm(
    path: Path, seed: int = 0, vocab_size: int = 1200, hidden: int = 32, corpus: list[str] | None = None
) -> Path:
    """Save a randomly initialised 2-layer Qwen2 model and a byte-level BPE tokenizer to ``path``.

    The tokenizer is trained on the prompt template and answer format, so prompts stay short
    (~250 tokens) and the tests stay fast; ``corpus`` adds texts to train it on (benchmarks pass
    the real questions, with a larger vocabulary, to get realistic prompt lengths).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    from scope_shared.estimators.reasoning.prompt import DEFAULT_TEMPLATE

    specials = ["<pad>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((CORPUS + [DEFAULT_TEMPLATE, *_question_words()]) * 20 + list(corpus or []), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>", bos_token=None
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=len(fast),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    Qwen2ForCausalLM(cfg).save_pretrained(path)
    return path


def _question_words() -> list[str]:
    return [f"Question {i}: {t} item {i} value {i * 37 % 1000}?" for i in range(40) for t in TOPICS]


TOPICS = ["arithmetic sum of numbers", "capital city of country", "chemistry gas reaction"]


def hash_embed(texts: list[str], dim: int = 16):
    """Deterministic unit vectors from text: same text, same vector; words shared, vectors close."""
    import hashlib

    import numpy as np

    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in t.lower().split():
            h = int(hashlib.md5(w.encode()).hexdigest(), 16)
            out[i, h % dim] += 1.0 if (h >> 8) % 2 else -1.0
        out[i] /= max(float(np.linalg.norm(out[i])), 1e-6)
        if not out[i].any():
            out[i, 0] = 1.0
    return out


MODELS = {"cheap-model": (0.1, 0.4), "strong-model": (3.0, 15.0)}


def make_history(n: int = 30, dim: int = 16, seed: int = 0):
    """A small history: ``n`` arithmetic/geography questions; the strong model is right more often
    and writes longer answers. Returns (history, embedder, cards)."""
    import numpy as np

    from scope_shared.cards import ModelCard, Outcome
    from scope_shared.embedders import FunctionEmbedder
    from scope_shared.history import History

    rng = np.random.default_rng(seed)
    emb = FunctionEmbedder(lambda ts: hash_embed(ts, dim), dim, name="hash")
    hist = History(dim, "hash")
    topics = TOPICS
    texts = [f"Question {i}: {topics[i % 3]} item {i} value {rng.integers(1000)}?" for i in range(n)]
    ids = hist.add_questions(texts, emb.embed(texts))
    for qid in ids:
        hard = qid % 3 == 2
        hist.add_outcomes(
            qid,
            [
                Outcome(model="cheap-model", correct=float(not hard and rng.random() < 0.8), output_tokens=float(rng.integers(50, 150))),
                Outcome(model="strong-model", correct=float(rng.random() < 0.9), output_tokens=float(rng.integers(300, 900))),
            ],
        )
    cards = [ModelCard(name=m, input_price=a, output_price=b) for m, (a, b) in MODELS.items()]
    for c in cards:
        hist.cards[c.name] = c
    return hist, emb, cards


def single_thread():
    """Generator for a module fixture: torch on one thread while the module runs (tiny models are
    ~6x faster that way on a shared 2-core machine), restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def memorise(backend, prompts: list[str], answer: str, steps: int = 60) -> float:
    """Teach the tiny model to answer every prompt with ``answer`` (loss on the answer only)."""
    import torch

    tok, model = backend.tokenizer, backend.model
    rows = []
    for p in prompts:
        ctx = tok(backend.render(p), add_special_tokens=False)["input_ids"]
        ans = tok(answer + tok.eos_token, add_special_tokens=False)["input_ids"]
        rows.append((ctx + ans, [-100] * len(ctx) + ans))
    width = max(len(r[0]) for r in rows)
    ids = torch.tensor([[tok.pad_token_id] * (width - len(r[0])) + r[0] for r in rows])
    labels = torch.tensor([[-100] * (width - len(r[1])) + r[1] for r in rows])
    att = (torch.arange(width)[None, :] >= torch.tensor([width - len(r[0]) for r in rows])[:, None]).long()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=att, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return float(loss.detach())
