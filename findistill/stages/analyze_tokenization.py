"""``analyze_tokenization``: Fertility, UNK rate, sequence lengths, per-entity-type fertility,
vocabulary use/overlap of tokenizers over corpora (general vs financial); tables and plots.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import mlflow

from findistill.config import require
from findistill.data.corpus import SPLITS
from findistill.data.splits import load_ner_data
from findistill.models.loading import DEFAULT_TEACHER
from findistill.reports.table import csv_text
from findistill.stages.common import load_tokenizer_ref, print_tracking_location, safe_label, scalar_row, split_list
from findistill.tracking.runs import describe_run, localize, log_json, log_metrics, log_text, stage_run
from findistill.vocab.analysis import (
    format_markdown_table,
    same_pieces_share,
    segment,
    segmentation_stats,
    vocab_overlap,
    word_normaliser,
)
from findistill.vocab.plots import plot_fertility_hist, plot_fertility_summary, plot_seq_lengths

#: Corpora of ../shared/data that ``corpora=auto`` analyses when they are there (with the sample).
SHARED_CORPORA = ("wikigold", "sec-filings", "finer-ord")
_LABEL_RE = re.compile(r"^([A-Za-z0-9_-]+)=(.+)$")


def _shared_data() -> Path | None:
    """``../shared/data`` beside the project (cwd under ``mlflow run``, else beside the package's repo)."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


@dataclass
class Config:
    """``analyze_tokenization``: how tokenizers split corpora, the general-vs-financial shift side by side.

    ``tokenizers``: comma-separated refs, each optionally ``label=ref`` (``packaged:...``, a
    tokenizer or model folder, ``runs:/<id>/tokenizer``, ``runs:/<id>/model``, a Hub id); the first
    is the reference for ``same_pieces``. ``corpora``: comma-separated NER data (anything ``data``
    takes, optionally ``label=path``), or ``auto``: the bundled sample plus the ../shared/data
    corpora that exist (wikigold, sec-filings, finer-ord). ``general``: labels of the
    general-domain corpora (the others count as domain text). ``split``: ``all`` or one split.
    """

    tokenizers: str = DEFAULT_TEACHER
    corpora: str = "auto"
    general: str = "wikigold"
    split: str = "all"
    max_sentences: int = 0
    seed: int = 42
    top_words: int = 20
    min_count: int = 3
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        require(bool(split_list(self.tokenizers)), "tokenizers",
                "comma-separated tokenizers, e.g. packaged:all-MiniLM-L6-v2,wp8k=runs:/<id>/tokenizer",
                self.tokenizers)
        require(bool(split_list(self.corpora)), "corpora", "'auto' or comma-separated NER data (e.g. "
                "sample,../shared/data/wikigold)", self.corpora)
        require(self.split in ("all", *SPLITS), "split", f"one of all, {', '.join(SPLITS)}", self.split)
        require(self.max_sentences >= 0, "max_sentences", "0 (all) or a positive count", self.max_sentences)
        require(self.top_words >= 1, "top_words", "an integer >= 1", self.top_words)
        require(self.min_count >= 1, "min_count", "an integer >= 1", self.min_count)


def _tokenizer_label(ref: str) -> str:
    if ref == DEFAULT_TEACHER:
        return "teacher"
    if ref.startswith("runs:/"):
        run_id = ref.split("/")[1]
        try:
            name = mlflow.get_run(run_id).data.tags.get("findistill.tokenizer_name")
        except Exception:  # an unknown run is reported when the tokenizer is loaded
            name = None
        return safe_label(name or f"run-{run_id[:8]}")
    return safe_label(Path(ref.rstrip("/")).name or ref)


def _labelled(items: list[str], default_label) -> list[tuple[str, str]]:
    """``[(label, ref)]`` from ``label=ref`` or plain ``ref`` items; labels made unique."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in items:
        match = _LABEL_RE.match(item)
        label, ref = (match.group(1), match.group(2).strip()) if match else (default_label(item), item)
        unique, n = label, 2
        while unique in seen:
            unique, n = f"{label}-{n}", n + 1
        seen.add(unique)
        out.append((unique, ref))
    return out


def _corpus_refs(config: Config) -> list[tuple[str, str]]:
    if config.corpora.strip() == "auto":
        shared = _shared_data()
        refs = ["sample"] + [str(shared / name) for name in SHARED_CORPORA if shared and (shared / name).is_dir()]
        print(f"corpora=auto: {', '.join(refs)}")
        return _labelled(refs, lambda ref: safe_label(Path(ref).name))
    return _labelled(split_list(config.corpora), lambda ref: safe_label(Path(ref.rstrip("/")).name or ref))


def _corpus_sentences(ref: str, split: str, seed: int, max_sentences: int):
    data = load_ner_data(localize(ref), seed=seed)
    sentences = [s for name in SPLITS for s in data.splits[name]] if split == "all" else data.splits[split]
    return sentences[:max_sentences] if max_sentences else sentences


_STAT_METRICS = ("sentences", "words", "fertility_mean", "split_share", "unk_rate", "unk_word_rate", "seq_len_mean",
                 "seq_len_p50", "seq_len_p95", "seq_len_max", "seq_over_128", "seq_over_256", "seq_over_512",
                 "fertility_entity", "fertility_non_entity", "vocab_used", "vocab_used_share")
_TABLE_COLUMNS = [
    ("corpus", "corpus", "{}"), ("domain", "domain", "{}"), ("tokenizer", "tokenizer", "{}"),
    ("sentences", "sentences", "{:,}"), ("words", "words", "{:,}"), ("fertility_mean", "sub-tokens/word", "{:.3f}"),
    ("split_share", "words split 2+", "{:.1%}"), ("unk_rate", "UNK", "{:.2%}"),
    ("fertility_entity", "entity words", "{:.3f}"), ("fertility_non_entity", "other words", "{:.3f}"),
    ("seq_len_mean", "tokens/sentence", "{:.1f}"), ("seq_len_p95", "p95", "{:.0f}"),
    ("seq_over_128", ">128", "{:.1%}"), ("seq_over_256", ">256", "{:.1%}"), ("seq_over_512", ">512", "{:.1%}"),
    ("vocab_used", "vocab used", "{:,}"), ("vocab_used_share", "of vocab", "{:.1%}"),
    ("same_pieces", "same pieces as ref", "{:.1%}"),
]


def run(config: Config) -> str:
    """Log per (corpus, tokenizer) ``<statistic>.<corpus>.<tokenizer>`` metrics, ``tokenization/summary.{json,csv,md}``
    and ``plots/{fertility_summary,fertility_hist,seq_len_hist}.png``."""
    tokenizer_refs = _labelled(split_list(config.tokenizers), _tokenizer_label)
    tokenizers = {label: load_tokenizer_ref(ref, config.trust_remote_code) for label, ref in tokenizer_refs}
    corpus_refs = _corpus_refs(config)
    corpora = {label: _corpus_sentences(ref, config.split, config.seed, config.max_sentences)
               for label, ref in corpus_refs}
    general = set(split_list(config.general))
    domains = {label: "general" if label in general else "domain" for label in corpora}
    corpora = dict(sorted(corpora.items(), key=lambda item: domains[item[0]] != "general"))  # general first
    reference = tokenizer_refs[0][0]
    name = f"analyze_tokenization {len(tokenizers)} tokenizers"
    with stage_run("analyze_tokenization", config, run_name=name) as run:
        results: dict[str, dict[str, dict]] = {name: {} for name in tokenizers}
        rows, metrics = [], {}
        for corpus, sentences in corpora.items():
            segmentations = {name: segment(t, sentences) for name, t in tokenizers.items()}
            for name, t in tokenizers.items():
                stats = segmentation_stats(sentences, segmentations[name], normalize=word_normaliser(t),
                                               top_words=config.top_words, min_count=config.min_count)
                stats["same_pieces"] = same_pieces_share(segmentations[name], segmentations[reference])
                results[name][corpus] = stats
                rows.append({"corpus": corpus, "domain": domains[corpus], "tokenizer": name, **scalar_row(stats)})
                for key in (*_STAT_METRICS, "same_pieces"):
                    metrics[f"{key}.{corpus}.{name}"] = stats.get(key)
                for entity_type, value in stats.get("fertility_by_type", {}).items():
                    metrics[f"fertility_{safe_label(entity_type)}.{corpus}.{name}"] = value
        overlap = {}
        for i, (a, ta) in enumerate(tokenizers.items()):
            metrics[f"vocab_size.{a}"] = len(ta)
            for b, tb in list(tokenizers.items())[i + 1:]:
                overlap[f"{a}|{b}"] = vocab_overlap(ta.get_vocab(), tb.get_vocab())
                metrics[f"vocab_shared.{a}.{b}"] = overlap[f"{a}|{b}"]["shared"]
                metrics[f"vocab_jaccard.{a}.{b}"] = overlap[f"{a}|{b}"]["jaccard"]
        log_metrics(metrics)
        order = list(tokenizers)
        rows.sort(key=lambda r: order.index(r["tokenizer"]))  # stable: corpora stay general first
        report = _analysis_markdown(rows, results, overlap, reference, domains)
        log_json({
            "tokenizers": dict(tokenizer_refs), "corpora": {c: {"source": dict(corpus_refs)[c], "domain": domains[c]}
                                                           for c in corpora},
            "split": config.split, "reference": reference, "overlap": overlap,
            "results": {n: {c: {k: v for k, v in s.items() if k != "seq_lengths"} for c, s in r.items()}
                        for n, r in results.items()},
        }, "tokenization/summary.json")
        log_text(csv_text(rows), "tokenization/summary.csv")
        log_text(report, "tokenization/summary.md")
        for figure, name in ((plot_fertility_summary(results, domains), "fertility_summary"),
                             (plot_fertility_hist(results, domains), "fertility_hist"),
                             (plot_seq_lengths(results, domains), "seq_len_hist")):
            mlflow.log_figure(figure, f"plots/{name}.png")
        describe_run(f"Tokenization of {', '.join(corpora)} by {', '.join(tokenizers)} ({config.split} split): "
                     + "; ".join(f"{r['tokenizer']} on {r['corpus']} {r['fertility_mean']:.3f} sub-tokens per word"
                                 for r in rows if "fertility_mean" in r) + ".")
        print(report)
        print_tracking_location()
        return run.info.run_id


def _analysis_markdown(rows: list[dict], results: dict, overlap: dict, reference: str, domains: dict) -> str:
    parts = ["## Tokenization by corpus (general vs domain)\n",
             f"Fertility = sub-tokens per word; tokens/sentence with [CLS]/[SEP], no truncation; "
             f"'same pieces': share of words split exactly as `{reference}` splits them.\n",
             format_markdown_table(rows, _TABLE_COLUMNS)]
    types = sorted({t for r in results.values() for s in r.values() for t in s.get("fertility_by_type", {})})
    if types:
        type_rows = [{"corpus": r["corpus"], "tokenizer": r["tokenizer"],
                      **results[r["tokenizer"]][r["corpus"]].get("fertility_by_type", {})} for r in rows]
        parts += ["\n## Fertility per entity type\n",
                  format_markdown_table(type_rows, [("corpus", "corpus", "{}"), ("tokenizer", "tokenizer", "{}"),
                                                        *[(t, t, "{:.3f}") for t in types]])]
    parts.append("\n## Most fragmented frequent words (extra tokens = (pieces - 1) x count)\n")
    for name, by_corpus in results.items():
        for corpus, stats in by_corpus.items():
            if domains.get(corpus) == "general" or not stats["fragmented_words"]:
                continue
            listed = ", ".join(f"`{w['word']}` {w['count']}x → {' '.join(w['pieces'])}"
                               for w in stats["fragmented_words"][:12])
            parts.append(f"- **{corpus} / {name}**: {listed}\n")
    if overlap:
        parts += ["\n## Vocabulary overlap\n",
                  format_markdown_table([{"pair": k.replace("|", " / "), **v} for k, v in overlap.items()],
                                            [("pair", "tokenizers", "{}"), ("size_a", "size A", "{:,}"),
                                             ("size_b", "size B", "{:,}"), ("shared", "shared", "{:,}"),
                                             ("share_of_a", "of A", "{:.1%}"), ("share_of_b", "of B", "{:.1%}"),
                                             ("jaccard", "Jaccard", "{:.3f}")])]
    return "".join(parts)
