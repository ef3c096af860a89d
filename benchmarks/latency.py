"""Routing latency, throughput, memory and recall at scale, against the embedding-alone floor.

What is measured, in one run (medians; p99 where asked):

- decision time of `Router.route` (embed + anchors + estimate + policy) for 10 and 100 candidates,
  with histories of 10k / 100k / 1M questions, single queries and batches of 64;
- next to it, the bundled MiniLM embedding of the same texts alone (the floor), and the decision
  time without the embedding (same router, query vectors precomputed);
- batch throughput (queries/s) of `route_batch` against embedding-only throughput;
- memory of the history (RSS growth while building it) and its parts;
- recall of the vector index the history uses at that size (``"auto"``: exact float32 up to 50k
  questions, IVF-SQ8 beyond) against exact search: of the plain top-40 neighbours, and of the
  per-model anchors the estimator reads.

Histories are SYNTHETIC: random unit vectors (the worst case for an approximate index: no cluster
structure), texts "synthetic question #i", 100 models, each question answered by 10 of them at
random (so 10% coverage per model, 10 outcomes per question), Bernoulli correctness and log-normal
output tokens. Queries are real llmrouter-9 questions embedded by the real bundled embedder
(in-memory cache off, so every route pays for its embedding). A recall figure on clustered vectors
(real llmrouter-9 embeddings plus noise) is added at 100k.

The embedders selectable by name (``--embedders minilm,fast``) are compared first, in the same run:
load time, single-query p50/p99 (interleaved, so both see the same machine load) and batch-64
throughput on the same real llmrouter-9 questions, in-memory cache off.

    nice -n 10 python benchmarks/latency.py               # full run (~5 min on 2 busy cores)
    nice -n 10 python benchmarks/latency.py --quick       # 10k and 100k only, fewer repetitions
    nice -n 10 python benchmarks/latency.py --embedders-only   # just the embedder comparison
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from scope_shared import FunctionEmbedder, History, ModelCard, Router  # noqa: E402
from scope_shared.data import dataset_path, load_llmrouter9  # noqa: E402
from scope_shared.embedders import SentenceTransformerEmbedder, StaticEmbedder, build_fast, embed_with_cache, named  # noqa: E402

DIM = 384
N_MODELS = 100
PER_QUESTION = 10
CHUNK = 100_000
RESULTS = Path(__file__).resolve().parent / "results"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def chunk_vectors(i: int, n: int) -> np.ndarray:
    """Deterministic random unit vectors of chunk ``i`` (regenerated for the exact reference)."""
    v = np.random.default_rng(1000 + i).standard_normal((n, DIM), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def build_history(n: int) -> tuple[History, float, float]:
    """Synthetic history of ``n`` questions; returns it, build seconds and RSS growth (MB)."""
    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    h = History(DIM)  # synthetic vectors: no embedder recorded, so any 384-d one may query it
    rng = np.random.default_rng(7)
    acc = rng.uniform(0.3, 0.9, N_MODELS)
    tok_mu = rng.uniform(4.0, 6.5, N_MODELS)
    for c, start in enumerate(range(0, n, CHUNK)):
        m = min(CHUNK, n - start)
        ids = np.asarray(h.add_questions([f"synthetic question #{start + i}" for i in range(m)], chunk_vectors(c, m)))
        who = np.argsort(rng.random((m, N_MODELS)), axis=1)[:, :PER_QUESTION]
        for j in range(N_MODELS):
            rows = np.flatnonzero((who == j).any(axis=1))
            h.add_outcome_arrays(
                ids[rows],
                f"model-{j:03d}",
                (rng.random(len(rows)) < acc[j]).astype(np.float64),
                np.round(np.exp(rng.normal(tok_mu[j], 0.5, len(rows)))),
            )
    for j in range(N_MODELS):
        h.model_stats(f"model-{j:03d}")  # merge everything now, as a first route would
    gc.collect()
    return h, time.perf_counter() - t0, rss_mb() - before


def exact_topk(h: History, n: int, q: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k ids over the regenerated vectors, chunk by chunk."""
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    for c, start in enumerate(range(0, n, CHUNK)):
        s = q @ chunk_vectors(c, min(CHUNK, n - start)).T
        top = np.argpartition(-s, min(k, s.shape[1] - 1), axis=1)[:, :k]
        best_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], 1)
        best_i = np.concatenate([best_i, top + start], 1)
        keep = np.argsort(-best_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i


def recall(h: History, n: int, q: np.ndarray, models: list[str], k: int = 40) -> dict[str, float]:
    """Recall@k of plain neighbours and of per-model anchors, against exact search."""
    _, got = h.search(q, k)
    ref = exact_topk(h, n, q, 4000)
    plain = np.mean([len(set(got[i]) & set(ref[i, :k])) / k for i in range(len(q))])
    anchors = h.anchors(q, models, k)
    hits = []
    for j, m in enumerate(models):
        member, _ = h._column(m).member(ref)
        for i in range(len(q)):
            exact = ref[i][member[i]][:k]
            hits.append(len(set(anchors.ids[i, j][anchors.mask[i, j]]) & set(exact)) / max(len(exact), 1))
    return {"neighbours_recall_at_40": float(plain), "anchor_recall_at_40": float(np.mean(hits))}


def clustered_recall(embedder: SentenceTransformerEmbedder, n: int, spec: str) -> dict[str, float]:
    """Recall@40 of ``spec`` vs exact on n vectors = real llmrouter-9 embeddings + noise."""
    table = load_llmrouter9(dataset_path("llmrouter-9"))
    centers = embed_with_cache(embedder, table.questions, show_progress=False)
    rng = np.random.default_rng(3)
    x = centers[rng.integers(0, len(centers), n)] + rng.normal(0, 0.04, (n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    qi = rng.integers(0, len(centers), 50)
    q = centers[qi] + rng.normal(0, 0.04, (50, DIM)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    h = History(DIM, index=spec)
    h.add_questions([f"c{i}" for i in range(n)], x)
    _, got = h.search(q, 40)
    s = q @ x.T
    ref = np.argsort(-s, axis=1)[:, :40]
    return {"spec": spec, "n": n, "recall_at_40": float(np.mean([len(set(got[i]) & set(ref[i])) / 40 for i in range(50)]))}


def timed(fn, *a, **kw) -> float:
    t = time.perf_counter()
    fn(*a, **kw)
    return time.perf_counter() - t


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1e3, p))


def load_embedder(name: str):
    """A fresh embedder (no per-text cache) by name, and its load time in seconds (the fast model is
    built first if missing, outside the timing)."""
    if name == named.FAST:
        path = build_fast()
        t0 = time.perf_counter()
        emb = StaticEmbedder(path, truncation=named.FastSpec().truncation, cache_size=0)
    elif name == named.MINILM:
        t0 = time.perf_counter()
        emb = SentenceTransformerEmbedder(cache_size=0)
    else:
        raise SystemExit(f"unknown embedder {name!r} (minilm, fast)")
    return emb, time.perf_counter() - t0


def compare_embedders(names: list[str], texts: list[str], reps: int, batches: int) -> list[dict]:
    """Single-query p50/p99 (each text embedded by every embedder in turn, after a warm-up) and
    batch-64 throughput per embedder; the first name is the baseline of the ratios."""
    loaded = [load_embedder(n) for n in names]
    for emb, _ in loaded:
        emb.embed(texts[:8])
    single: list[list[float]] = [[] for _ in names]
    for t in texts[:reps]:
        for i, (emb, _) in enumerate(loaded):
            single[i].append(timed(emb.embed, [t]))
    batch: list[list[float]] = [[] for _ in names]
    for b in range(batches):
        chunk = texts[reps + 64 * b : reps + 64 * (b + 1)]
        for i, (emb, _) in enumerate(loaded):
            batch[i].append(timed(emb.embed, chunk))
    rows = []
    for i, (name, (emb, load_s)) in enumerate(zip(names, loaded)):
        rows.append({"embedder": name, "recorded_name": emb.name, "dim": emb.dim, "load_s": load_s,
                     "single_p50_ms": pct(single[i], 50), "single_p99_ms": pct(single[i], 99),
                     "batch64_qps": 64 / float(np.median(batch[i])),
                     "single_speedup_vs_baseline": pct(single[0], 50) / pct(single[i], 50)})
    chars = [len(t) for t in texts[:reps]]
    print(f"\n== embedders on {reps} real llmrouter-9 questions (mean {np.mean(chars):.0f} chars), "
          f"batches of 64 x {batches}, cache off")
    for r in rows:
        print(f"   {r['embedder']:<7} load {r['load_s']:.2f}s | single p50 {r['single_p50_ms']:.2f} ms / "
              f"p99 {r['single_p99_ms']:.2f} ms ({r['single_speedup_vs_baseline']:.0f}x {names[0]}) | "
              f"batch64 {r['batch64_qps']:.0f} q/s | {r['dim']}-d ({r['recorded_name']})")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--candidates", default="10,100")
    ap.add_argument("--reps", type=int, default=12, help="single queries with the real embedder")
    ap.add_argument("--overhead-reps", type=int, default=60, help="single queries, vectors precomputed")
    ap.add_argument("--batches", type=int, default=2, help="batches of 64")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="torch intra-op threads for the embedder (0 = torch's default). On 2 shared cores "
                         "torch's default 2 threads measured ~10x slower (OpenMP workers spinning)")
    ap.add_argument("--embedders", default="minilm,fast", help="embedders to compare (first = baseline); '' skips")
    ap.add_argument("--embedder-reps", type=int, default=300, help="single queries per embedder")
    ap.add_argument("--embedders-only", action="store_true", help="only the embedder comparison")
    ap.add_argument("--out", default=None, help="JSON path (default results/latency.json, or latency_embedders.json)")
    args = ap.parse_args()
    if args.out is None:
        args.out = str(RESULTS / ("latency_embedders.json" if args.embedders_only else "latency.json"))
    if args.quick:
        args.sizes, args.reps, args.overhead_reps, args.batches = "10000,100000", 6, 30, 1
    sizes = [int(s) for s in args.sizes.split(",")]
    cands = [int(c) for c in args.candidates.split(",")]

    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    table = load_llmrouter9(dataset_path("llmrouter-9"))
    texts = list(dict.fromkeys(table.questions))
    rng = np.random.default_rng(0)
    rng.shuffle(texts)
    machine = {"cpus": os.cpu_count(), "torch_threads": args.torch_threads, "python": platform.python_version(),
               "load_avg_start": os.getloadavg(), "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM")}
    embedders = compare_embedders(args.embedders.split(","), texts, args.embedder_reps, 4) if args.embedders else []
    if args.embedders_only:
        machine["load_avg_end"] = os.getloadavg()
        Path(args.out).write_text(json.dumps({"machine": machine, "embedders": embedders}, indent=1))
        print(f"\nwrote {args.out}")
        return
    embedder = SentenceTransformerEmbedder(cache_size=0)  # every call pays for its embedding
    need = args.reps + 64 * args.batches
    pool = texts[:need]
    vecs = {t: v for t, v in zip(pool, embedder.embed(pool))}
    pre = FunctionEmbedder(lambda ts: np.stack([vecs[t] for t in ts]), DIM, name="precomputed")
    embedder.embed(["warm-up"])
    cards = [ModelCard(name=f"model-{j:03d}", input_price=0.1 + j / 10, output_price=0.2 + j / 5) for j in range(N_MODELS)]

    out: dict[str, object] = {
        "machine": machine,
        "embedders": embedders,
        "synthetic": "random unit vectors, 100 models, 10 random outcomes per question; real queries and embedder",
        "runs": [],
        "memory": [],
        "recall": [],
    }
    for n in sizes:
        h, build_s, mem_mb = build_history(n)
        parts = {
            "index_mb": h.index.nbytes() / 2**20,
            "columns_mb": sum(c.nbytes() for c in h._columns.values()) / 2**20,
            "outcome_log_mb": h.outcome_log.nbytes() / 2**20,
        }
        mem = {"questions": n, "outcomes": h.n_records, "index": h.index._factory_string() if not h.index.exact else "flat",
               "build_s": build_s, "rss_growth_mb": mem_mb, **parts}
        out["memory"].append(mem)  # type: ignore[union-attr]
        print(f"\n== {n:,} questions, {h.n_records:,} outcomes: built in {build_s:.1f}s, "
              f"RSS +{mem_mb:.0f} MB ({mem['index']}; index {parts['index_mb']:.0f} MB, "
              f"columns {parts['columns_mb']:.0f} MB, log {parts['outcome_log_mb']:.0f} MB)")
        rec = recall(h, n, embedder.embed(texts[-50:]), [c.name for c in cards[:10]])
        out["recall"].append({"questions": n, "index": mem["index"], **rec})  # type: ignore[union-attr]
        print(f"   recall vs exact: neighbours {rec['neighbours_recall_at_40']:.3f}, anchors {rec['anchor_recall_at_40']:.3f}")
        for m in cands:
            names = [c.name for c in cards[:m]]
            real = Router(cards[:m], h, embedder=embedder)
            fast = Router(cards[:m], h, embedder=pre)
            real.route(pool[0]), fast.route(pool[0])
            emb_t, route_t, over_t = [], [], []
            for t in pool[: args.reps]:
                emb_t.append(timed(embedder.embed, [t]))
                route_t.append(timed(real.route, t))
            for i in range(args.overhead_reps):
                over_t.append(timed(fast.route, pool[i % args.reps]))
            b_emb, b_route, b_over = [], [], []
            for b in range(args.batches):
                batch = pool[args.reps + 64 * b : args.reps + 64 * (b + 1)]
                b_emb.append(timed(embedder.embed, batch))
                b_route.append(timed(real.route_batch, batch))
                b_over.append(timed(fast.route_batch, batch))
            r = {
                "questions": n,
                "candidates": m,
                "embed_p50_ms": pct(emb_t, 50),
                "decision_p50_ms": pct(route_t, 50),
                "decision_p99_ms": pct(route_t, 99),
                "overhead_p50_ms": pct(over_t, 50),
                "overhead_p99_ms": pct(over_t, 99),
                "overhead_over_embedding": pct(over_t, 50) / pct(emb_t, 50),
                "batch64_embed_ms": pct(b_emb, 50),
                "batch64_decision_ms": pct(b_route, 50),
                "batch64_overhead_ms": pct(b_over, 50),
                "batch_qps": 64 / np.median(b_route),
                "embed_only_qps": 64 / np.median(b_emb),
            }
            assert names == real.models
            out["runs"].append(r)  # type: ignore[union-attr]
            print(
                f"   {m:3d} candidates: single decision p50 {r['decision_p50_ms']:.1f} ms / p99 {r['decision_p99_ms']:.1f} ms"
                f" | embedding alone p50 {r['embed_p50_ms']:.1f} ms | overhead p50 {r['overhead_p50_ms']:.2f} ms"
                f" (p99 {r['overhead_p99_ms']:.2f}) = {r['overhead_over_embedding']:.2f}x embedding"
                f" | batch64 {r['batch64_decision_ms']:.0f} ms vs embed {r['batch64_embed_ms']:.0f} ms:"
                f" {r['batch_qps']:.0f} q/s vs {r['embed_only_qps']:.0f} q/s embedding-only"
            )
        del h, real, fast
        gc.collect()
    if 100_000 in sizes:
        cr = clustered_recall(embedder, 100_000, "ivf-sq8")
        out["recall"].append({"clustered": True, **cr})  # type: ignore[union-attr]
        print(f"\nclustered vectors (llmrouter-9 embeddings + noise), 100k, ivf-sq8: recall@40 {cr['recall_at_40']:.3f}")
    out["machine"]["load_avg_end"] = os.getloadavg()  # type: ignore[index]
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    plot(out, path.with_suffix(".png"))
    print(f"\nwrote {path} and {path.with_suffix('.png')}")


def plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    runs = out["runs"]
    for m, style in ((10, "o-"), (100, "s-")):
        rs = [r for r in runs if r["candidates"] == m]
        if not rs:
            continue
        x = [r["questions"] for r in rs]
        ax.plot(x, [r["decision_p50_ms"] for r in rs], style, label=f"decision p50, {m} candidates")
        ax.plot(x, [r["overhead_p50_ms"] for r in rs], style.replace("-", "--"), label=f"overhead (no embedding), {m} cand.")
    rs = [r for r in runs if r["candidates"] == runs[0]["candidates"]]
    ax.plot([r["questions"] for r in rs], [r["embed_p50_ms"] for r in rs], "k:", label="embedding alone p50")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("history size (questions, synthetic)")
    ax.set_ylabel("ms per single query")
    ax.set_title("SCOPE routing latency vs history size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
