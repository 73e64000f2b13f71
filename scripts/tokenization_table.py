"""The tokenization tables of docs/tokenization.md, from one command (about a minute on 2 cores):

    .venv/bin/python scripts/tokenization_table.py            # prints markdown, writes docs/tokenization.{md,json}
    .venv/bin/python scripts/tokenization_table.py --json     # prints the JSON instead

1. The teacher's tokenizer on general (WikiGold) and financial text (SEC filings, FiNER-ORD, the
   bundled sample): the same tokenizer on every corpus, all splits.
2. Domain tokenizers built from the FiNER-ORD *train* split (train.conll minus a seeded 10%) by
   each method at 4k / 8k / 16k, against the teacher's on held-out financial text: the FiNER-ORD
   validation split (that seeded 10%, never seen by any tokenizer) and the whole SEC corpus
   (another financial sub-domain). For ``extend`` the size is what is *added* to the teacher's
   30,522 (the result is capped by the candidate words the text has).

It calls the library the stages use (findistill.tokenization, findistill.vocab_transfer) directly,
without MLflow; ``mlflow run . -e train_tokenizer`` / ``-e analyze_tokenization`` log the same
numbers per run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from findistill.data.corpus import SPLITS
from findistill.data.splits import load_ner_data
from findistill.data.text import sentence_texts
from findistill.models.loading import DEFAULT_TEACHER, load_tokenizer
from findistill.models.vocab_transfer import plan_transfer
from findistill.vocab.analysis import (
    embedding_params,
    format_markdown_table,
    same_pieces_share,
    segment,
    segmentation_stats,
    tokenization_stats,
)
from findistill.vocab.build import build_tokenizer

SHARED = REPO.parent / "shared" / "data"
HIDDEN = 384  # all-MiniLM-L6-v2
CORPORA = {"wikigold": "general", "sec-filings": "financial", "finer-ord": "financial", "sample": "financial"}
SIZES = (4000, 8000, 16000)
#: (method, model_type, size, min_frequency); min_frequency 2 is the stage's default.
BUILDS = ([("train", "wordpiece", n, 2) for n in SIZES] + [("train", "wordpiece", 16000, 1)]
          + [("trim", "wordpiece", n, 2) for n in SIZES] + [("extend", "wordpiece", n, 2) for n in SIZES]
          + [("train", "bpe", 8000, 2), ("train", "unigram", 8000, 2)])


def corpus_sentences(name: str) -> list:
    data = load_ner_data("sample" if name == "sample" else SHARED / name)
    return [s for split in SPLITS for s in data.splits[split]]


def teacher_table(teacher) -> list[dict]:
    rows = []
    for name, domain in CORPORA.items():
        stats = tokenization_stats(teacher, corpus_sentences(name))
        rows.append({"corpus": name, "domain": domain, **{k: v for k, v in stats.items()
                                                           if not isinstance(v, (list, dict))},
                     "fragmented_words": [f"{w['word']} ({' '.join(w['pieces'])}) x{w['count']}"
                                          for w in stats["fragmented_words"][:8]]})
    return rows


def domain_table(teacher) -> tuple[list[dict], dict]:
    finer = load_ner_data(SHARED / "finer-ord")  # train.conll -> train + seeded 10% validation
    train, heldout = finer.splits["train"], finer.splits["validation"]
    sec = corpus_sentences("sec-filings")
    evaluations = {"finer_val": heldout, "sec": sec}
    teacher_segs = {k: segment(teacher, v) for k, v in evaluations.items()}
    rows = [summary_row("teacher", "-", "-", len(teacher), teacher, evaluations, teacher_segs, None)]
    for method, model_type, size, min_frequency in BUILDS:
        requested = size + len(teacher) if method == "extend" else size
        built = build_tokenizer(method, teacher, lambda: sentence_texts(train), requested,
                                    model_type=model_type, min_frequency=min_frequency)
        label = (f"{method} +{size // 1000}k" if method == "extend" else
                 f"{method}{'' if model_type == 'wordpiece' else '-' + model_type} {size // 1000}k"
                 + ("" if min_frequency == 2 else f" (min_frequency {min_frequency})"))
        rows.append(summary_row(label, method, model_type, requested, built.tokenizer, evaluations, teacher_segs,
                                plan_transfer(teacher, built.tokenizer, "fvt").counts()))
        rows[-1]["build"] = {k: v for k, v in built.info.items() if k != "first_added"}
    notes = {"train_sentences": len(train), "heldout_sentences": len(heldout), "sec_sentences": len(sec),
             "train_words": sum(len(s.tokens) for s in train), "data_files": finer.files,
             "teacher_pieces_used_by_train_text": rows[1]["build"]["teacher_pieces_used"]}
    return rows, notes


def summary_row(label, method, model_type, requested, tokenizer, evaluations, teacher_segs, plan_counts) -> dict:
    row = {"tokenizer": label, "method": method, "model_type": model_type, "requested": requested,
           "vocab": len(tokenizer), "embedding_params": embedding_params(len(tokenizer), HIDDEN)}
    for key, sentences in evaluations.items():
        seg = segment(tokenizer, sentences)
        stats = segmentation_stats(sentences, seg)
        row.update({f"{key}_tokens_per_sentence": stats["seq_len_mean"], f"{key}_fertility": stats["fertility_mean"],
                    f"{key}_same_pieces": same_pieces_share(seg, teacher_segs[key]),
                    f"{key}_unk_rate": stats["unk_rate"], f"{key}_seq_over_128": stats["seq_over_128"]})
    if plan_counts:
        row["fvt_rows"] = plan_counts
        row["exact_rows_share"] = (plan_counts["exact"] + plan_counts["special"]) / len(tokenizer)
    return row


def markdown(teacher_rows: list[dict], domain_rows: list[dict], notes: dict, seconds: float) -> str:
    teacher_columns = [
        ("corpus", "corpus", "{}"), ("domain", "domain", "{}"), ("sentences", "sentences", "{:,}"),
        ("words", "words", "{:,}"), ("fertility_mean", "sub-tokens/word", "{:.3f}"),
        ("split_share", "words split 2+", "{:.1%}"), ("unk_rate", "UNK", "{:.3%}"),
        ("fertility_entity", "entity words", "{:.3f}"), ("fertility_non_entity", "other words", "{:.3f}"),
        ("seq_len_mean", "tokens/sentence", "{:.1f}"), ("seq_len_p95", "p95", "{:.0f}"),
        ("seq_over_128", ">128", "{:.1%}"), ("seq_over_512", ">512", "{:.2%}"),
        ("vocab_used", "vocab used", "{:,}"), ("vocab_used_share", "of 30,522", "{:.1%}"),
    ]
    domain_columns = [
        ("tokenizer", "tokenizer", "{}"), ("vocab", "vocab", "{:,}"), ("embedding_params", "embedding params", "{:,}"),
        ("finer_val_tokens_per_sentence", "FiNER val tokens/sent", "{:.2f}"),
        ("finer_val_fertility", "FiNER val sub-tok/word", "{:.3f}"),
        ("finer_val_same_pieces", "FiNER val same pieces as teacher", "{:.1%}"),
        ("sec_tokens_per_sentence", "SEC tokens/sent", "{:.2f}"), ("sec_same_pieces", "SEC same pieces", "{:.1%}"),
        ("exact_rows_share", "rows copied exactly (FVT)", "{:.1%}"),
    ]
    words = "\n".join(f"- **{r['corpus']}**: {', '.join(r['fragmented_words'])}" for r in teacher_rows)
    return (
        "# Tokenization: the financial domain shift and domain tokenizers\n\n"
        "Generated by `.venv/bin/python scripts/tokenization_table.py` "
        f"({seconds:.0f} s); the numbers are in `docs/tokenization.json`.\n\n"
        "## The teacher's tokenizer (all-MiniLM-L6-v2, uncased WordPiece 30,522) on general vs financial text\n\n"
        "All splits of each corpus. Fertility = sub-tokens per word (the corpus' own words); tokens/sentence "
        "counts [CLS] and [SEP], without truncation.\n\n"
        + format_markdown_table(teacher_rows, teacher_columns)
        + "\nMost fragmented frequent words (extra tokens = (pieces - 1) x count):\n\n" + words + "\n\n"
        "## Domain tokenizers vs the teacher's on held-out financial text\n\n"
        f"Built from the FiNER-ORD train split ({notes['train_sentences']:,} sentences, {notes['train_words']:,} "
        f"words; that text uses {notes['teacher_pieces_used_by_train_text']:,} of the teacher's 30,522 pieces). "
        f"Held out: the FiNER-ORD validation split ({notes['heldout_sentences']} sentences, seeded 10% of "
        f"train.conll) and the whole SEC corpus ({notes['sec_sentences']:,} sentences, another financial "
        "sub-domain). 'Same pieces': share of held-out words split exactly as the teacher splits them. Embedding "
        "params = vocab x 384. 'Rows copied exactly': special tokens + exact string matches under FVT (the rest "
        "are means of teacher rows). A method gives fewer entries than asked when the text runs out: `train` "
        "stops when no merge is seen twice (min_frequency 2, the default; `trim` instead fills the "
        "room left with the teacher's other pieces in id order), `extend +Nk` (N thousand words asked on top "
        "of the teacher's) when the candidate words "
        "(seen twice, split by the teacher) run out, so its three sizes coincide; Unigram's trainer stops "
        "early too. Unigram pieces carry no `##`, so its 'same pieces' is low by construction.\n\n"
        + format_markdown_table(domain_rows, domain_columns)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the markdown")
    parser.add_argument("--out", default=str(REPO / "docs"), help="folder for tokenization.md / tokenization.json")
    args = parser.parse_args()
    started = time.perf_counter()
    teacher = load_tokenizer(DEFAULT_TEACHER)
    teacher_rows = teacher_table(teacher)
    domain_rows, notes = domain_table(teacher)
    seconds = time.perf_counter() - started
    text = markdown(teacher_rows, domain_rows, notes, seconds)
    payload = {"teacher": DEFAULT_TEACHER, "hidden_size": HIDDEN, "teacher_by_corpus": teacher_rows,
               "domain_tokenizers": domain_rows, "notes": notes}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenization.md").write_text(text, encoding="utf-8")
    (out / "tokenization.json").write_text(json.dumps(payload, indent=1, default=str) + "\n", encoding="utf-8")
    print(json.dumps(payload, indent=1, default=str) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
