"""How the rows of the embedding matrix are weighted when it is factorised, measured before any training.

    MLFLOW_TRACKING_URI=sqlite:///benchmarks/results/study.db .venv/bin/python benchmarks/embedding_weights.py \\
        --teacher runs:/<id>/model --data ../shared/data/finer-ord --rank 96      # about 10 min on 2 cores

The teacher keeps all its layers; only its word embeddings are replaced by a rank-r truncated SVD whose
subspace is chosen under each weighting of the rows (``findistill.models.factorised.svd_factors``): none,
the token counts of the training split (what ``embedding_weights=frequency`` uses), flatter functions of
them (+1, square root, log), sharper ones (powers), and the counts plus a multiple of each token's count
inside the gold entity words of the training split (more rank for the pieces of names). ``--exact-rows``
adds rows that keep the K most frequent tokens' rows exact beside the counts-weighted factors of the others,
at the rank that spends no more parameters than ``--rank`` alone. The weighting is chosen on validation
F1; test F1 is reported beside it. Writes ``benchmarks/results/embedding_weights.{json,md}`` (``--out``).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def weightings(counts, entity_counts) -> dict:  # noqa: ANN001
    """Name -> row weights (None: the plain SVD)."""
    return {"none": None, "counts": counts, "counts + 1": counts + 1, "sqrt(counts)": counts.sqrt(),
            "log(1 + counts)": counts.log1p(), "counts^1.5": counts.pow(1.5), "counts^2": counts.pow(2),
            "counts + 10 x entity counts": counts + 10 * entity_counts,
            "counts + 100 x entity counts": counts + 100 * entity_counts}


def markdown(result: dict) -> str:
    """The table of ``result`` (what ``--out``.json holds)."""
    rank, rows = result["rank"], result["rows"]
    exact = any("exact" in name for name in rows)
    lines = [f"# Embedding row weights at rank {rank}, before training", "",
             f"Teacher `{result['teacher']}` with all its layers, on `{result['data']}`; only its word embeddings "
             f"replaced by a rank-{rank} truncated SVD whose subspace the row weights choose"
             + (f" (rows with exact rows: the K most frequent rows kept exact, the subspace fitted to the others, at "
                f"the rank that spends no more parameters than rank {rank} alone)" if exact else "")
             + f". Token counts: {result['train_tokens']:,} pieces of the training split, "
             f"{result['entity_tokens']:,} of them inside gold entity words. Chosen on validation: "
             f"**{result['chosen_on_validation']}**.", "",
             "| row weights | embedding parameters | relative error | validation F1 | test F1 |",
             "|---|---:|---:|---:|---:|"]
    for name, row in rows.items():
        error = "–" if row["svd_error"] is None else f"{row['svd_error']:.3f}"
        params = f"{row['embedding_params'] / 1e6:.2f}M" if "embedding_params" in row else "–"
        lines.append(f"| {name} | {params} | {error} | {row['validation_f1']:.4f} | {row['test_f1']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", required=True, help="a fine-tuned token classifier (runs:/<id>/model or a folder)")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "finer-ord"))
    parser.add_argument("--rank", type=int, default=96)
    parser.add_argument("--weightings", default="all",
                        help="comma-separated row weightings to try (names as in the table), or 'all'")
    parser.add_argument("--exact-rows", default="",
                        help="comma-separated counts K of most frequent rows kept exact (at equal parameters)")
    parser.add_argument("--out", default=str(RESULTS / "embedding_weights"))
    parser.add_argument("--markdown-only", action="store_true", help="rewrite --out.md from --out.json, nothing run")
    args = parser.parse_args()
    if args.markdown_only:
        Path(f"{args.out}.md").write_text(markdown(json.loads(Path(f"{args.out}.json").read_text())))
        return
    sys.path.insert(0, str(REPO))
    from findistill.data.splits import load_ner_data
    from findistill.evaluation.predict import evaluate_ner
    from findistill.models.factorised import exact_rows_at_equal_parameters, factorise_embeddings, token_frequencies
    from findistill.models.loading import load_token_classifier, load_tokenizer
    from findistill.tracking.runs import localize_model

    splits = load_ner_data(args.data).splits
    folder = localize_model(args.teacher)
    teacher, tokenizer = load_token_classifier(folder), load_tokenizer(folder)
    size = teacher.get_input_embeddings().weight.shape[0]
    train = splits["train"]
    counts = token_frequencies(tokenizer, [s.tokens for s in train], size)
    names = [[w for w, tag in zip(s.tokens, s.tags, strict=True) if tag != "O"] for s in train]
    entity_counts = token_frequencies(tokenizer, [words for words in names if words], size)
    width = teacher.get_input_embeddings().weight.shape[1]
    named = weightings(counts, entity_counts)
    candidates = {name: (args.rank, weights, 0) for name, weights in named.items()
                  if args.weightings == "all" or name in args.weightings.split(",")}
    for k in (int(k) for k in args.exact_rows.split(",") if k):
        rank = exact_rows_at_equal_parameters(size, width, args.rank, k)
        if rank < 1:
            print(f"{k:,} exact rows alone take more than rank {args.rank}'s parameters: left out")
            continue
        candidates[f"counts, {k:,} rows exact, rank {rank}"] = (rank, counts, k)
    if not candidates:
        parser.error(f"--weightings {args.weightings!r} names none of: {', '.join(named)}")
    rows = {"teacher (no factorisation)": {"validation_f1": evaluate_ner(teacher, tokenizer, splits["validation"])
                                           .scores["f1"], "test_f1": evaluate_ner(teacher, tokenizer, splits["test"])
                                           .scores["f1"], "svd_error": None, "embedding_params": size * width}}
    for name, (rank, weights, exact) in candidates.items():
        started = time.perf_counter()
        model = copy.deepcopy(teacher)
        report = factorise_embeddings(model, rank, weights, exact_rows=exact)
        rows[name] = {"validation_f1": evaluate_ner(model, tokenizer, splits["validation"]).scores["f1"],
                      "test_f1": evaluate_ner(model, tokenizer, splits["test"]).scores["f1"],
                      "svd_error": report["embedding_svd_error"],
                      "embedding_params": report["embedding_params_after"]}
        print(f"{name}: validation F1 {rows[name]['validation_f1']:.4f} ({time.perf_counter() - started:.0f} s)",
              flush=True)
    factorised = {k: r for k, r in rows.items() if r["svd_error"] is not None}
    chosen = max(factorised, key=lambda k: factorised[k]["validation_f1"])
    result = {"teacher": args.teacher, "data": args.data, "rank": args.rank, "train_tokens": int(counts.sum()),
              "entity_tokens": int(entity_counts.sum()), "chosen_on_validation": chosen, "rows": rows}
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    Path(f"{args.out}.md").write_text(markdown(result))
    print(f"wrote {args.out}.json and {args.out}.md")


if __name__ == "__main__":
    main()
