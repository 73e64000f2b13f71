"""A study's test predictions, kept in its report's JSON so that its comparisons outlive the MLflow store.

    .venv/bin/python benchmarks/study_predictions.py docs/results/finer-ord-longer.json s6-r48w-f320-hidden-e12-full \\
        docs/results/finer-ord-qat.json s6-r48w-f320-hidden-e12-qat

compares two rows of two reports (or of one) as the study compares a row with its baseline: mean test F1
difference on the seeds both have, paired t-test across them, paired bootstrap over test sentences. The
report stores each run's predicted tags (label ids, compressed; the words and gold tags stay in the corpus)
and a digest of the test split's words and gold tags: the comparison refuses two reports whose test splits
differ, or a corpus whose test split is not the one the report was made on. A teacher (``teacher-0``...)
can be named as a row.

    .venv/bin/python benchmarks/study_predictions.py docs/results/finer-ord-longer.json docs/results/finer-ord-qat.json

(two reports, no rows) lists the runs the two reports share, row and seed: whether the runs repeat each other
(the words whose predicted tags differ; 0 when a store made again reproduces the old one) and their test F1.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def split_digest(words: list[list[str]], gold: list[list[str]]) -> str:
    """SHA-256 of a split's words and gold tags, sentence by sentence."""
    digest = hashlib.sha256()
    for w, g in zip(words, gold, strict=True):
        digest.update(("\x1e" + "\x1f".join(w) + "\x1d" + "\x1f".join(g)).encode())
    return digest.hexdigest()


def pack_tags(tags: list[list[str]], labels: list[str]) -> str:
    """The tags of a split (sentences concatenated) as base64 of their zlib-compressed ids in ``labels``, one
    byte each; a tag not in ``labels`` is appended to it (so ``labels`` is shared by every run packed with it)."""
    ids = bytearray()
    for sentence in tags:
        for tag in sentence:
            if tag not in labels:
                labels.append(tag)
            ids.append(labels.index(tag))
    return base64.b64encode(zlib.compress(bytes(ids), 9)).decode("ascii")


def unpack_tags(packed: str, labels: list[str], lengths: list[int]) -> list[list[str]]:
    """:func:`pack_tags` undone, cut into sentences of ``lengths`` words (ValueError if they do not add up)."""
    ids = zlib.decompress(base64.b64decode(packed))
    if len(ids) != sum(lengths):
        raise ValueError(f"the packed tags hold {len(ids):,} words, the split {sum(lengths):,}")
    flat = [labels[i] for i in ids]
    cuts = np.cumsum([0, *lengths])
    return [flat[a:b] for a, b in zip(cuts[:-1], cuts[1:])]


def exported(report: dict, row: str) -> dict[str, str]:
    """Seed -> packed predictions of ``row`` (a variant or a teacher) in ``report`` (KeyError naming what it has)."""
    predictions = report.get("predictions")
    if not predictions:
        raise KeyError(f"the report {report.get('report')!r} holds no predictions (made before they were exported)")
    if row not in predictions:
        raise KeyError(f"no row {row!r} in report {report.get('report')!r}; it has {', '.join(predictions)}")
    return predictions[row]


def _check_split(reports: tuple[dict, ...], words: list[list[str]], gold: list[list[str]]) -> None:
    """ValueError unless every report was made on this test split."""
    digest = split_digest(words, gold)
    for report in reports:
        if report["test_split"]["sha256"] != digest:
            raise ValueError(f"the report {report.get('report')!r} was made on another test split than "
                             f"{report['data']}'s here")


def compare_rows(a: tuple[dict, str], b: tuple[dict, str], words: list[list[str]], gold: list[list[str]]) -> dict:
    """Row ``a[1]`` of report ``a[0]`` against row ``b[1]`` of ``b[0]`` on the test split (``words``, ``gold``):
    ``seeds``, per-seed F1 of each, ``gain``, ``t_p`` and ``bootstrap`` as the study reports them."""
    from study import entity_counts, micro_f1, paired_bootstrap, paired_t  # the sibling module

    runs = [exported(report, row) for report, row in (a, b)]
    _check_split((a[0], b[0]), words, gold)
    lengths = [len(w) for w in words]
    counts = []
    for (report, _), packed_runs in zip((a, b), runs):
        counts.append({seed: entity_counts(gold, unpack_tags(packed, report["labels"], lengths))
                       for seed, packed in packed_runs.items()})
    seeds = sorted(set(counts[0]) & set(counts[1]))
    if not seeds:
        raise ValueError(f"the rows share no seed ({', '.join(counts[0])} against {', '.join(counts[1])})")
    f1 = [[micro_f1(c[s]) for s in seeds] for c in counts]
    return {"seeds": seeds, "f1": f1, "gain": float(np.mean(f1[0]) - np.mean(f1[1])), "t_p": paired_t(*f1),
            "bootstrap": paired_bootstrap([counts[0][s] for s in seeds], [counts[1][s] for s in seeds])}


def repeats(a: dict, b: dict, words: list[list[str]], gold: list[list[str]]) -> list[dict]:
    """The runs reports ``a`` and ``b`` share (same row name, same seed), each as ``row``, ``seed``,
    ``words_differ`` (test words whose predicted tags differ between the two) and ``f1`` (in ``a``, in ``b``);
    ValueError if the reports were made on other test splits or share no run."""
    from study import entity_counts, micro_f1  # the sibling module

    _check_split((a, b), words, gold)
    lengths = [len(w) for w in words]
    shared = []
    for row, runs in (a.get("predictions") or {}).items():
        others = (b.get("predictions") or {}).get(row, {})
        for seed in sorted(set(runs) & set(others)):
            tags = [unpack_tags(report["predictions"][row][seed], report["labels"], lengths) for report in (a, b)]
            differ = sum(x != y for sa, sb in zip(*tags) for x, y in zip(sa, sb))
            shared.append({"row": row, "seed": seed, "words_differ": differ,
                           "f1": [micro_f1(entity_counts(gold, t)) for t in tags]})
    if not shared:
        raise ValueError(f"the reports {a.get('report')!r} and {b.get('report')!r} share no run (row and seed)")
    return shared


def _print_repeats(paths: list[Path], shared: list[dict]) -> None:
    print(f"runs in both {paths[0].name} and {paths[1].name} (test F1 in each; words whose tags differ):")
    for run in shared:
        verdict = "the same predictions" if run["words_differ"] == 0 else f"{run['words_differ']} words differ"
        print(f"  {run['row']}, seed {run['seed']}: {run['f1'][0]:.4f} / {run['f1'][1]:.4f}, {verdict}")


def _print_comparison(paths: list[Path], rows: list[str], cmp: dict) -> None:
    boot = cmp["bootstrap"]
    print(f"{rows[0]} ({paths[0].name}) against {rows[1]} ({paths[1].name}), seeds {', '.join(cmp['seeds'])}:")
    for name, f1 in zip(rows, cmp["f1"]):
        print(f"  {name}: test F1 {', '.join(f'{x:.4f}' for x in f1)} (mean {np.mean(f1):.4f})")
    t_p = "–" if cmp["t_p"] is None else f"{cmp['t_p']:.3f}"
    print(f"  gain {100 * cmp['gain']:+.2f} F1 points; paired t-test p {t_p}; bootstrap 95% "
          f"[{100 * boot['low']:+.2f}, {100 * boot['high']:+.2f}], p(not better) {boot['p_not_better']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", metavar="REPORT [ROW]",
                        help="A.json ROW_A B.json ROW_B: two rows compared; A.json B.json: the runs both repeat")
    parser.add_argument("--data", default="", help="the corpus (default: the one the first report names)")
    args = parser.parse_args()
    if len(args.reports) not in (2, 4):
        parser.error("give A.json ROW_A B.json ROW_B (two rows) or A.json B.json (the runs two reports share)")
    from findistill.data.splits import load_ner_data

    paths = [Path(p) for p in args.reports[::len(args.reports) // 2]]
    rows = args.reports[1::2] if len(args.reports) == 4 else []
    a, b = (json.loads(p.read_text()) for p in paths)
    test = load_ner_data(args.data or a["data"]).splits["test"]
    words, gold = [s.tokens for s in test], [s.tags for s in test]
    try:
        if rows:
            _print_comparison(paths, rows, compare_rows((a, rows[0]), (b, rows[1]), words, gold))
        else:
            _print_repeats(paths, repeats(a, b, words, gold))
    except (KeyError, ValueError) as err:
        sys.exit(f"error: {err.args[0]}")


if __name__ == "__main__":
    main()
