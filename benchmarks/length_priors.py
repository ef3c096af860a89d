"""Per-benchmark output-length priors for the bundled pack's models, from licensed real usage, checked.

The bundled pack (llmrouter-9) has no output-token counts, so every model was "256 tokens" on every
question. Real provider token usage exists in routerarena-2 (Apache-2.0: claude-3-haiku and
gemini-2.0-flash on ~90 benchmarks, 809 questions). Its benchmarks are grouped by answer format with
the pack's (multiple choice, grade-school maths, competition maths, code, open/trivia QA); a pack
benchmark's prior is the median output tokens of both models over its group. Benchmarks with no
matching group (commongen, agentverse-logicgrid) get none and stay "assumed".

routerbench-11 has no licence (research use, not to be shipped), so nothing derived from it goes
into the package: it is used here only to check the priors against other models' real lengths
(response characters / 4, its only length figure) on the two benchmarks it shares with the pack,
arc_challenge and mbpp: median absolute log2 error of the prior vs the flat 256 over its 11 models.

``--write`` stores the priors on every card of the bundled pack's ``pack.json`` (with a note saying
where they come from). Writes ``benchmarks/results/length_priors.{json,txt}``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PACK_JSON = ROOT / "scope_shared" / "onboarding" / "packs" / "llmrouter-9" / "pack.json"
ARENA_MODELS = ("claude-3-haiku-20240307", "gemini-2.0-flash-001")
#: routerarena-2 benchmark families (the part of ``global_index`` before the subject), by answer format
GROUPS = {
    "multiple choice": ("MMLU", "MMLUPro", "MedMCQA", "ArcMMLU"),
    "grade-school maths": ("GSM8K", "AsDiv", "MathQA"),
    "competition maths": ("MATH", "AIME"),
    "code": ("LiveCodeBench",),
    "open and trivia QA": ("OpenTDB", "QANTA", "NarrativeQA"),
}
#: the pack's benchmarks in those groups
PACK_GROUP = {
    "mmlu": "multiple choice", "gpqa": "multiple choice", "arc_challenge": "multiple choice",
    "openbook_qa": "multiple choice", "commonsense_qa": "multiple choice",
    "gsm8k": "grade-school maths", "agentverse-mgsm": "grade-school maths",
    "math": "competition maths",
    "mbpp": "code", "human_eval": "code",
    "natural_qa": "open and trivia QA", "trivia_qa": "open and trivia QA",
}
ROUTERBENCH_SHARED = {"arc-challenge": "arc_challenge", "mbpp": "mbpp"}
FLAT = 256.0


def arena_lengths(folder: Path) -> dict[str, list[int]]:
    """Output tokens (real provider usage) of both models, pooled by group."""
    by_group: dict[str, list[int]] = defaultdict(list)
    family_group = {f: g for g, fams in GROUPS.items() for f in fams}
    for model in ARENA_MODELS:
        for line in (folder / f"{model}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            family = row["global_index"].rsplit("_", 1)[0].split("_")[0]
            tokens = (row.get("token_usage") or {}).get("output_tokens")
            if family in family_group and tokens:
                by_group[family_group[family]].append(int(tokens))
    return by_group


def routerbench_medians(path: Path) -> dict[str, dict[str, float]]:
    """Median response length in tokens (characters / 4) per shared benchmark and model."""
    lengths: dict[tuple[str, str], list[float]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            bench = ROUTERBENCH_SHARED.get(row["benchmark"])
            if bench and row["response_chars"]:
                lengths[(bench, row["model"])].append(float(row["response_chars"]) / 4)
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for (bench, model), v in lengths.items():
        out[bench][model] = max(statistics.median(v), 1.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="folder holding routerarena-2 and routerbench-11 (default: the data folder)")
    ap.add_argument("--write", action="store_true", help="store the priors on the bundled pack's cards")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "length_priors"))
    args = ap.parse_args()
    from scope_shared.data.paths import data_dir

    data = Path(args.data) if args.data else data_dir()

    groups = arena_lengths(data / "routerarena-2")
    group_prior = {g: float(statistics.median(v)) for g, v in groups.items()}
    priors = {b: round(group_prior[g]) for b, g in PACK_GROUP.items()}
    lines = ["Output-length priors for the bundled pack, from routerarena-2 (Apache-2.0) real token usage:"]
    for g, v in groups.items():
        lines.append(f"  {g:<20} median {group_prior[g]:6.0f} output tokens  (n = {len(v)}, {', '.join(GROUPS[g])})")
    lines.append("  pack benchmarks: " + ", ".join(f"{b} {t}" for b, t in priors.items()))
    lines.append("  no prior (stay assumed, 256): commongen, agentverse-logicgrid")

    check = routerbench_medians(data / "routerbench-11" / "routerbench_long.csv")
    result: dict[str, object] = {"priors": priors, "groups": {g: {"median": group_prior[g], "n": len(v)} for g, v in groups.items()}}
    lines.append("Check against routerbench-11 (other models' real response lengths, chars / 4; evaluation only):")
    errs = {"prior": [], "flat": []}
    for bench, per_model in check.items():
        real = np.array(list(per_model.values()))
        e_prior = np.abs(np.log2(priors[bench] / real))
        e_flat = np.abs(np.log2(FLAT / real))
        errs["prior"] += e_prior.tolist()
        errs["flat"] += e_flat.tolist()
        lines.append(f"  {bench:<14} real medians {np.min(real):.0f}-{np.max(real):.0f} tokens over {len(real)} models; prior "
                     f"{priors[bench]}: median |log2 error| {np.median(e_prior):.2f} vs flat 256: {np.median(e_flat):.2f}")
        result[f"check_{bench}"] = {"real_median_tokens": per_model, "prior": priors[bench],
                                    "median_abs_log2_error_prior": float(np.median(e_prior)),
                                    "median_abs_log2_error_flat256": float(np.median(e_flat))}
    ratio = np.median(errs["prior"]) / np.median(errs["flat"])
    lines.append(f"  both: median |log2 error| prior {np.median(errs['prior']):.2f} vs flat {np.median(errs['flat']):.2f} "
                 f"(ratio {ratio:.2f}; 1 bit = a factor of 2)")
    result["median_abs_log2_error"] = {"prior": float(np.median(errs["prior"])), "flat256": float(np.median(errs["flat"]))}
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".txt").write_text(text + "\n")
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))

    from scope_shared.onboarding.length_priors import LLMROUTER9_OUTPUT_TOKENS, NOTE

    shipped = {b: float(t) for b, t in priors.items()} == LLMROUTER9_OUTPUT_TOKENS
    print(f"shipped priors (scope_shared/onboarding/length_priors.py) {'match' if shipped else 'DIFFER FROM'} these")
    if args.write:
        manifest = json.loads(PACK_JSON.read_text(encoding="utf-8"))
        for card in manifest["models"]:
            card["output_tokens_by_benchmark"] = dict(sorted(LLMROUTER9_OUTPUT_TOKENS.items()))
        manifest["notes"] = [NOTE]
        PACK_JSON.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote the priors into {PACK_JSON.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
