"""How the rows of the embedding matrix are weighted when it is factorised, measured before any training.

    MLFLOW_TRACKING_URI=sqlite:///benchmarks/results/study.db .venv/bin/python benchmarks/embedding_weights.py \\
        --teacher runs:/<id>/model --data ../shared/data/finer-ord --rank 96      # about 10 min on 2 cores

The teacher keeps all its layers; only its word embeddings are replaced by a rank-r truncated SVD whose
subspace is chosen under each weighting of the rows (``findistill.models.factorised.svd_factors``): none,
the token counts of the training split (what ``embedding_weights=frequency`` uses), flatter functions of
them (+1, square root, log), sharper ones (powers), and the counts plus a multiple of each token's count
inside the gold entity words of the training split (more rank for the pieces of names). The weighting is
chosen on validation F1; test F1 is reported beside it. Writes
``benchmarks/results/embedding_weights.{json,md}``.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", required=True, help="a fine-tuned token classifier (runs:/<id>/model or a folder)")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "finer-ord"))
    parser.add_argument("--rank", type=int, default=96)
    parser.add_argument("--out", default=str(RESULTS / "embedding_weights"))
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from findistill.data.splits import load_ner_data
    from findistill.evaluation.predict import evaluate_ner
    from findistill.models.factorised import factorise_embeddings, token_frequencies
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
    rows = {"teacher (no factorisation)": {"validation_f1": evaluate_ner(teacher, tokenizer, splits["validation"])
                                           .scores["f1"], "test_f1": evaluate_ner(teacher, tokenizer, splits["test"])
                                           .scores["f1"], "svd_error": None}}
    for name, weights in weightings(counts, entity_counts).items():
        started = time.perf_counter()
        model = copy.deepcopy(teacher)
        report = factorise_embeddings(model, args.rank, weights)
        rows[name] = {"validation_f1": evaluate_ner(model, tokenizer, splits["validation"]).scores["f1"],
                      "test_f1": evaluate_ner(model, tokenizer, splits["test"]).scores["f1"],
                      "svd_error": report["embedding_svd_error"]}
        print(f"{name}: validation F1 {rows[name]['validation_f1']:.4f} ({time.perf_counter() - started:.0f} s)",
              flush=True)
    factorised = {k: r for k, r in rows.items() if r["svd_error"] is not None}
    chosen = max(factorised, key=lambda k: factorised[k]["validation_f1"])
    result = {"teacher": args.teacher, "data": args.data, "rank": args.rank, "train_tokens": int(counts.sum()),
              "entity_tokens": int(entity_counts.sum()), "chosen_on_validation": chosen, "rows": rows}
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Embedding row weights at rank {args.rank}, before training", "",
             f"Teacher `{args.teacher}` with all its layers, on `{args.data}`; only its word embeddings replaced by "
             f"a rank-{args.rank} truncated SVD whose subspace the row weights choose. Token counts: "
             f"{result['train_tokens']:,} pieces of the training split, {result['entity_tokens']:,} of them inside "
             f"gold entity words. Chosen on validation: **{chosen}**.", "",
             "| row weights | relative SVD error | validation F1 | test F1 |", "|---|---:|---:|---:|"]
    for name, row in rows.items():
        error = "–" if row["svd_error"] is None else f"{row['svd_error']:.3f}"
        lines.append(f"| {name} | {error} | {row['validation_f1']:.4f} | {row['test_f1']:.4f} |")
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}.json and {args.out}.md")


if __name__ == "__main__":
    main()
