"""The tokenization stages (issue 3): ``analyze_tokenization`` and ``train_tokenizer``.

``analyze_tokenization`` measures how tokenizers split general and financial corpora side by side;
``train_tokenizer`` builds a domain tokenizer (train / trim / extend) and logs it as
``runs:/<id>/tokenizer`` with its comparison to the teacher on held-out text. The science is in
:mod:`findistill.tokenization` and :mod:`findistill.vocab_transfer`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import mlflow

from findistill import tokenization as tok
from findistill import tracking
from findistill.config import require
from findistill.data import SPLITS
from findistill.models import DEFAULT_TEACHER
from findistill.data import load_ner_data
from findistill.stages import DataParams, load_stage_data, load_tokenizer_ref, print_tracking_location

# (issue 3: measure the domain shift in tokenization, build domain tokenizers)



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


def _split_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _safe_label(text: str) -> str:
    """A label usable inside metric names: letters, digits, '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "x"


@dataclass
class AnalyzeTokenizationConfig:
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
        require(bool(_split_list(self.tokenizers)), "tokenizers",
                "comma-separated tokenizers, e.g. packaged:all-MiniLM-L6-v2,wp8k=runs:/<id>/tokenizer",
                self.tokenizers)
        require(bool(_split_list(self.corpora)), "corpora", "'auto' or comma-separated NER data (e.g. "
                "sample,../shared/data/wikigold)", self.corpora)
        require(self.split in ("all", *SPLITS), "split", f"one of all, {', '.join(SPLITS)}", self.split)
        require(self.max_sentences >= 0, "max_sentences", "0 (all) or a positive count", self.max_sentences)
        require(self.top_words >= 1, "top_words", "an integer >= 1", self.top_words)
        require(self.min_count >= 1, "min_count", "an integer >= 1", self.min_count)


@dataclass
class TrainTokenizerConfig(DataParams):
    """``train_tokenizer``: build a domain tokenizer (``method`` train / trim / extend) of ``vocab_size`` entries.

    Domain text: the train split of ``data`` (``use_train_split``) and/or ``text_data`` (a text,
    JSONL or parquet file, a folder of them, a save_to_disk dataset; ``none`` for no such corpus),
    streamed. Never the test split; the validation split of ``data`` is the held-out text on which
    the tokenizer is compared with the teacher's. ``vocab_size`` is the size of the result (for
    ``extend`` it must exceed the teacher's 30,522). ``model_type`` (wordpiece, bpe, unigram) and
    ``min_frequency`` apply to ``train``; ``min_frequency`` also to the words ``extend`` adds.
    """

    method: str = "train"
    vocab_size: int = 8000
    model_type: str = "wordpiece"
    min_frequency: int = 2
    teacher: str = DEFAULT_TEACHER
    use_train_split: bool = True
    text_data: str = "none"
    text_field: str = "text"
    max_text_lines: int = 0
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.method in tok.METHODS, "method", f"one of {', '.join(tok.METHODS)}", self.method)
        require(self.model_type in tok.MODEL_TYPES, "model_type", f"one of {', '.join(tok.MODEL_TYPES)}",
                self.model_type)
        require(self.vocab_size >= 2, "vocab_size", "a vocabulary size (entries, special tokens included)",
                self.vocab_size)
        require(self.min_frequency >= 1, "min_frequency", "an integer >= 1", self.min_frequency)
        require(self.max_text_lines >= 0, "max_text_lines", "0 (all) or a positive count", self.max_text_lines)
        require(bool(self.teacher.strip()), "teacher", "a tokenizer/model reference", self.teacher)
        require(bool(self.text_data.strip()), "text_data", "'none' or a text corpus (file, folder, dataset)",
                self.text_data)
        require(self.use_train_split or self.text_data != "none", "text_data",
                "a text corpus when use_train_split is false (there is no domain text otherwise)", self.text_data)


def _tokenizer_label(ref: str) -> str:
    if ref == DEFAULT_TEACHER:
        return "teacher"
    if ref.startswith("runs:/"):
        run_id = ref.split("/")[1]
        try:
            name = mlflow.get_run(run_id).data.tags.get("findistill.tokenizer_name")
        except Exception:  # an unknown run is reported when the tokenizer is loaded
            name = None
        return _safe_label(name or f"run-{run_id[:8]}")
    return _safe_label(Path(ref.rstrip("/")).name or ref)


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


def _corpus_refs(config: AnalyzeTokenizationConfig) -> list[tuple[str, str]]:
    if config.corpora.strip() == "auto":
        shared = _shared_data()
        refs = ["sample"] + [str(shared / name) for name in SHARED_CORPORA if shared and (shared / name).is_dir()]
        print(f"corpora=auto: {', '.join(refs)}")
        return _labelled(refs, lambda ref: _safe_label(Path(ref).name))
    return _labelled(_split_list(config.corpora), lambda ref: _safe_label(Path(ref.rstrip("/")).name or ref))


def _corpus_sentences(ref: str, split: str, seed: int, max_sentences: int):
    data = load_ner_data(tracking.localize(ref), seed=seed)
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


def _scalar_row(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if not isinstance(v, (list, dict))}


def _csv_text(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def analyze_tokenization(config: AnalyzeTokenizationConfig) -> str:
    """Log per (corpus, tokenizer) ``<statistic>.<corpus>.<tokenizer>`` metrics, ``tokenization/summary.{json,csv,md}``
    and ``plots/{fertility_summary,fertility_hist,seq_len_hist}.png``."""
    tokenizer_refs = _labelled(_split_list(config.tokenizers), _tokenizer_label)
    tokenizers = {label: load_tokenizer_ref(ref, config.trust_remote_code) for label, ref in tokenizer_refs}
    corpus_refs = _corpus_refs(config)
    corpora = {label: _corpus_sentences(ref, config.split, config.seed, config.max_sentences)
               for label, ref in corpus_refs}
    general = set(_split_list(config.general))
    domains = {label: "general" if label in general else "domain" for label in corpora}
    corpora = dict(sorted(corpora.items(), key=lambda item: domains[item[0]] != "general"))  # general first
    reference = tokenizer_refs[0][0]
    with tracking.stage_run("analyze_tokenization", config) as run:
        results: dict[str, dict[str, dict]] = {name: {} for name in tokenizers}
        rows, metrics = [], {}
        for corpus, sentences in corpora.items():
            segmentations = {name: tok.segment(t, sentences) for name, t in tokenizers.items()}
            for name, t in tokenizers.items():
                stats = tok.segmentation_stats(sentences, segmentations[name], normalize=tok.word_normaliser(t),
                                               top_words=config.top_words, min_count=config.min_count)
                stats["same_pieces"] = tok.same_pieces_share(segmentations[name], segmentations[reference])
                results[name][corpus] = stats
                rows.append({"corpus": corpus, "domain": domains[corpus], "tokenizer": name, **_scalar_row(stats)})
                for key in (*_STAT_METRICS, "same_pieces"):
                    metrics[f"{key}.{corpus}.{name}"] = stats.get(key)
                for entity_type, value in stats.get("fertility_by_type", {}).items():
                    metrics[f"fertility_{_safe_label(entity_type)}.{corpus}.{name}"] = value
        overlap = {}
        for i, (a, ta) in enumerate(tokenizers.items()):
            metrics[f"vocab_size.{a}"] = len(ta)
            for b, tb in list(tokenizers.items())[i + 1:]:
                overlap[f"{a}|{b}"] = tok.vocab_overlap(ta.get_vocab(), tb.get_vocab())
                metrics[f"vocab_shared.{a}.{b}"] = overlap[f"{a}|{b}"]["shared"]
                metrics[f"vocab_jaccard.{a}.{b}"] = overlap[f"{a}|{b}"]["jaccard"]
        tracking.log_metrics(metrics)
        order = list(tokenizers)
        rows.sort(key=lambda r: order.index(r["tokenizer"]))  # stable: corpora stay general first
        report = _analysis_markdown(rows, results, overlap, reference, domains)
        tracking.log_json({
            "tokenizers": dict(tokenizer_refs), "corpora": {c: {"source": dict(corpus_refs)[c], "domain": domains[c]}
                                                           for c in corpora},
            "split": config.split, "reference": reference, "overlap": overlap,
            "results": {n: {c: {k: v for k, v in s.items() if k != "seq_lengths"} for c, s in r.items()}
                        for n, r in results.items()},
        }, "tokenization/summary.json")
        tracking.log_text(_csv_text(rows), "tokenization/summary.csv")
        tracking.log_text(report, "tokenization/summary.md")
        for figure, name in ((tok.plot_fertility_summary(results, domains), "fertility_summary"),
                             (tok.plot_fertility_hist(results, domains), "fertility_hist"),
                             (tok.plot_seq_lengths(results, domains), "seq_len_hist")):
            mlflow.log_figure(figure, f"plots/{name}.png")
        print(report)
        print_tracking_location()
        return run.info.run_id


def _analysis_markdown(rows: list[dict], results: dict, overlap: dict, reference: str, domains: dict) -> str:
    parts = ["## Tokenization by corpus (general vs domain)\n",
             f"Fertility = sub-tokens per word; tokens/sentence with [CLS]/[SEP], no truncation; "
             f"'same pieces': share of words split exactly as `{reference}` splits them.\n",
             tok.format_markdown_table(rows, _TABLE_COLUMNS)]
    types = sorted({t for r in results.values() for s in r.values() for t in s.get("fertility_by_type", {})})
    if types:
        type_rows = [{"corpus": r["corpus"], "tokenizer": r["tokenizer"],
                      **results[r["tokenizer"]][r["corpus"]].get("fertility_by_type", {})} for r in rows]
        parts += ["\n## Fertility per entity type\n",
                  tok.format_markdown_table(type_rows, [("corpus", "corpus", "{}"), ("tokenizer", "tokenizer", "{}"),
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
                  tok.format_markdown_table([{"pair": k.replace("|", " / "), **v} for k, v in overlap.items()],
                                            [("pair", "tokenizers", "{}"), ("size_a", "size A", "{:,}"),
                                             ("size_b", "size B", "{:,}"), ("shared", "shared", "{:,}"),
                                             ("share_of_a", "of A", "{:.1%}"), ("share_of_b", "of B", "{:.1%}"),
                                             ("jaccard", "Jaccard", "{:.3f}")])]
    return "".join(parts)


def _size_label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else f"{n / 1000:.1f}k"


def _hidden_size(ref: str) -> int | None:
    """The teacher model's hidden size (for embedding parameter counts), or None for a tokenizer-only ref."""
    from transformers import AutoConfig

    from findistill.models import resolve_model_path

    try:
        path = tracking.localize_model(ref) if tracking.is_mlflow_uri(ref) else resolve_model_path(ref)
        return int(AutoConfig.from_pretrained(path).hidden_size)
    except Exception:  # a tokenizer-only folder or an unreachable id: the counts are left out
        return None


_HELDOUT_KEYS = ("fertility_mean", "split_share", "unk_rate", "seq_len_mean", "seq_len_p95", "seq_over_128",
                 "vocab_used")


def train_tokenizer(config: TrainTokenizerConfig) -> str:
    """Build the tokenizer, log it as ``tokenizer/`` (``runs:/<id>/tokenizer``), its build info and its
    analysis against the teacher's on the validation split (``tokenizer_report.{json,md}``, plots)."""
    data = load_stage_data(config)
    teacher = load_tokenizer_ref(config.teacher, config.trust_remote_code)
    if config.text_data != "none":
        text_source = tracking.localize(config.text_data)
        next(tok.iter_text(text_source, text_field=config.text_field), None)  # a bad path fails here, before the run

    def texts():
        train_texts = tok.sentence_texts(data.splits["train"]) if config.use_train_split else iter(())
        extra = (tok.iter_text(text_source, text_field=config.text_field, max_lines=config.max_text_lines)
                 if config.text_data != "none" else iter(()))
        return chain(train_texts, extra)

    built = tok.build_tokenizer(config.method, teacher, texts, config.vocab_size, model_type=config.model_type,
                                min_frequency=config.min_frequency)
    name = (f"{config.method}-{config.model_type}-{_size_label(len(built.tokenizer))}" if config.method == "train"
            else f"{config.method}-{_size_label(len(built.tokenizer))}")
    with tracking.stage_run("train_tokenizer", config) as run:
        with tracking.scratch_dir("tokenizer") as tmp:
            folder = Path(tmp) / "tokenizer"
            built.tokenizer.save_pretrained(folder)
            new = tok.load_tokenizer_any(str(folder))  # analyse what was saved, as users will load it
            tracking.log_artifacts(folder, "tokenizer")
        heldout = data.splits["validation"]
        seg_new, seg_teacher = tok.segment(new, heldout), tok.segment(teacher, heldout)
        stats = {
            name: tok.segmentation_stats(heldout, seg_new, normalize=tok.word_normaliser(new)),
            "teacher": tok.segmentation_stats(heldout, seg_teacher, normalize=tok.word_normaliser(teacher)),
        }
        stats[name]["same_pieces"] = tok.same_pieces_share(seg_new, seg_teacher)
        stats["teacher"]["same_pieces"] = 1.0
        hidden = _hidden_size(config.teacher)
        overlap = tok.vocab_overlap(new.get_vocab(), teacher.get_vocab())
        metrics = {k: v for k, v in built.info.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and k not in ("min_frequency", "requested_vocab_size")}  # those are parameters
        metrics.update(vocab_size=len(new), teacher_vocab_size=len(teacher),
                       vocab_shared_with_teacher=overlap["shared"],
                       heldout_same_pieces_as_teacher=stats[name]["same_pieces"])
        if hidden:
            metrics.update(embedding_params=tok.embedding_params(len(new), hidden),
                           teacher_embedding_params=tok.embedding_params(len(teacher), hidden))
        for key in _HELDOUT_KEYS:
            metrics[f"heldout_{key}"] = stats[name][key]
            metrics[f"teacher_heldout_{key}"] = stats["teacher"][key]
        tracking.log_metrics(metrics)
        uri = f"runs:/{run.info.run_id}/tokenizer"
        mlflow.set_tags({"findistill.tokenizer_uri": uri, "findistill.tokenizer_name": name})
        rows = [{"tokenizer": n, "vocab": len(t), "embedding_params": tok.embedding_params(len(t), hidden) if hidden
                 else None, **_scalar_row(stats[n])} for n, t in ((name, new), ("teacher", teacher))]
        report = (f"## {name} vs the teacher on held-out text (validation split, {len(heldout)} sentences)\n\n"
                  + tok.format_markdown_table(rows, [
                      ("tokenizer", "tokenizer", "{}"), ("vocab", "vocab", "{:,}"),
                      ("embedding_params", "embedding params", "{:,}"), ("seq_len_mean", "tokens/sentence", "{:.2f}"),
                      ("fertility_mean", "sub-tokens/word", "{:.3f}"), ("split_share", "words split 2+", "{:.1%}"),
                      ("same_pieces", "same pieces as teacher", "{:.1%}"), ("unk_rate", "UNK", "{:.2%}"),
                      ("seq_over_128", ">128", "{:.1%}")]))
        tracking.log_json({"name": name, "uri": uri, "build": built.info, "data_files": data.files,
                           "overlap_with_teacher": overlap,
                           "heldout": {n: {k: v for k, v in s.items() if k != "seq_lengths"}
                                       for n, s in stats.items()}},
                          "tokenizer_report.json")
        tracking.log_text(report, "tokenizer_report.md")
        results = {"held-out validation split": stats}  # one panel, the two tokenizers side by side
        mlflow.log_figure(tok.plot_fertility_hist(results), "plots/heldout_fertility_hist.png")
        mlflow.log_figure(tok.plot_seq_lengths(results), "plots/heldout_seq_len_hist.png")
        for note in data.notes:
            print(f"note: {note}")
        print(f"{report}\nbuild: {json.dumps({k: v for k, v in built.info.items() if k != 'first_added'})}\n"
              f"tokenizer URI: {uri}")
        print_tracking_location()
        return run.info.run_id

