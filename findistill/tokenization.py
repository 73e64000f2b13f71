"""Domain tokenization: how a tokenizer splits a corpus, and tokenizers built for a domain.

Analysis (pure functions over a fast tokenizer and pre-split words; nothing here touches MLflow)

* :func:`segment` tokenises every word of a corpus into its pieces (a :class:`Segmentation`);
  :func:`segmentation_stats` turns that into fertility (sub-tokens per word), the share of words
  split into 2+ pieces, UNK rates, sequence lengths in tokens, fertility per entity type, the most
  fragmented frequent words and the share of the vocabulary the corpus uses;
  :func:`tokenization_stats` does both.
* :func:`same_pieces_share`: share of word occurrences two tokenizers split into the same pieces;
  :func:`vocab_overlap`: how two vocabularies overlap.
* :func:`plot_fertility_hist`, :func:`plot_seq_lengths`, :func:`plot_fertility_summary`: matplotlib
  figures (no pyplot, so no global backend state) for the MLflow UI.

Domain text (streamed: a corpus larger than memory works)

* :func:`iter_text` reads text files (``.gz`` too), JSONL with a text field, parquet, a
  ``save_to_disk`` dataset (its ``train`` split) or a Hub dataset (streaming);
  :func:`sentence_texts` turns labelled sentences into text; :func:`count_words` counts the words
  as a tokenizer's normaliser and pre-tokeniser see them.

Building a domain tokenizer (:func:`build_tokenizer`, by method)

* ``train``: a new model trained with the ``tokenizers`` library on the domain text: WordPiece
  (default), BPE or Unigram, with the teacher's normaliser, pre-tokeniser, special tokens and
  post-processor, so a model sees the same words and special tokens as before;
* ``trim``: the teacher's WordPiece vocabulary cut to the pieces the domain text uses (most
  frequent first), plus every single-character piece and its ``##`` form, so any word the teacher
  tokenises still tokenises; a word whose pieces are all kept is split exactly as the teacher
  splits it (greedy longest match over a subset that holds the teacher's match finds the same one);
* ``extend``: the teacher's vocabulary plus the whole domain words that save the most tokens.

Every built tokenizer is a standard ``PreTrainedTokenizerFast`` (``tokenizer.json``): it loads with
``AutoTokenizer.from_pretrained``. Vocabulary sizes count every entry, special tokens included.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer, models, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from findistill.config import ConfigError
from findistill.data import DataError, Sentence, is_ignored_file, is_saved_dataset, split_for_file_name

__all__ = [
    "BuiltTokenizer",
    "FERTILITY_BINS",
    "METHODS",
    "MODEL_TYPES",
    "SEQ_LENGTH_LIMITS",
    "Segmentation",
    "build_tokenizer",
    "count_words",
    "embedding_params",
    "extend_vocabulary",
    "format_markdown_table",
    "is_tokenizer_folder",
    "iter_text",
    "load_tokenizer_any",
    "plot_fertility_hist",
    "plot_fertility_summary",
    "plot_seq_lengths",
    "same_pieces_share",
    "segment",
    "segmentation_stats",
    "sentence_texts",
    "tokenization_stats",
    "train_new_tokenizer",
    "trim_vocabulary",
    "vocab_overlap",
    "word_normaliser",
]

METHODS = ("train", "trim", "extend")
MODEL_TYPES = ("wordpiece", "bpe", "unigram")
#: Fertility histogram bins: words of 1, 2, ... 7 pieces, then 8 or more.
FERTILITY_BINS = ("1", "2", "3", "4", "5", "6", "7", "8+")
#: Sequence lengths (tokens, special tokens included) whose excess share is reported.
SEQ_LENGTH_LIMITS = (128, 256, 512)
_SPECIAL_ATTRS = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token", "bos_token", "eos_token")
_LETTER = re.compile(r"[^\W\d_]")
#: A word in the plain sense: 2+ letters, optionally joined by hyphens or apostrophes ("ebitda-adjusted").
_WORDLIKE = re.compile(r"[^\W\d_]{2,}(?:[-'’][^\W\d_]+)*")


# ============================================================================ loading tokenizers


def is_tokenizer_folder(path: str | os.PathLike) -> bool:
    """True for a local folder holding a saved tokenizer (``tokenizer.json`` or ``tokenizer_config.json``)."""
    folder = Path(path)
    return folder.is_dir() and ((folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file())


def load_tokenizer_any(ref: str, *, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Fast tokenizer of ``ref``: a tokenizer-only folder (as ``train_tokenizer`` saves), or any model
    reference :func:`findistill.models.load_tokenizer` takes (``packaged:...``, a model folder, a Hub id)."""
    from findistill.models import ModelLoadError, load_tokenizer

    if is_tokenizer_folder(ref) and not (Path(ref) / "config.json").is_file():
        try:
            tokenizer = AutoTokenizer.from_pretrained(ref, use_fast=True, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as err:
            raise ModelLoadError(f"{ref}: could not load the tokenizer ({err})") from err
        if not tokenizer.is_fast:
            raise ModelLoadError(f"{ref}: needs a fast tokenizer (tokenizer.json) to align sub-tokens with words")
        return tokenizer
    return load_tokenizer(ref, trust_remote_code=trust_remote_code)


# ============================================================================ analysis


@dataclass
class Segmentation:
    """The pieces of every word of a corpus under one tokenizer.

    ``pieces[s][w]`` / ``ids[s][w]``: sub-token strings / ids of word ``w`` of sentence ``s``
    (special tokens excluded; an empty list for a word the tokenizer drops, e.g. a control
    character). ``special_tokens``: tokens the tokenizer adds to one sequence ([CLS], [SEP]).
    """

    pieces: list[list[list[str]]]
    ids: list[list[list[int]]]
    special_tokens: int
    unk_id: int | None
    vocab_size: int


def _words_of(sentences: Sequence[Sentence | Sequence[str]]) -> list[list[str]]:
    return [list(s.tokens) if isinstance(s, Sentence) else list(s) for s in sentences]


def segment(tokenizer: PreTrainedTokenizerBase, sentences: Sequence[Sentence | Sequence[str]],
            batch_size: int = 256) -> Segmentation:
    """Tokenise pre-split sentences (``Sentence`` or lists of words) word-aligned, without truncation."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("segment needs a fast tokenizer (word_ids)")
    words = _words_of(sentences)
    pieces: list[list[list[str]]] = []
    ids: list[list[list[int]]] = []
    for start in range(0, len(words), batch_size):
        batch = words[start:start + batch_size]
        encoded = tokenizer(batch, is_split_into_words=True, add_special_tokens=False, verbose=False)
        for i, sentence in enumerate(batch):
            sentence_pieces: list[list[str]] = [[] for _ in sentence]
            sentence_ids: list[list[int]] = [[] for _ in sentence]
            for token, token_id, word in zip(encoded.tokens(i), encoded["input_ids"][i], encoded.word_ids(i)):
                if word is not None:
                    sentence_pieces[word].append(token)
                    sentence_ids[word].append(token_id)
            pieces.append(sentence_pieces)
            ids.append(sentence_ids)
    return Segmentation(pieces=pieces, ids=ids, special_tokens=tokenizer.num_special_tokens_to_add(pair=False),
                        unk_id=tokenizer.unk_token_id, vocab_size=len(tokenizer))


def word_normaliser(tokenizer: PreTrainedTokenizerBase | None) -> Callable[[str], str]:
    """``normalize(word)`` as the tokenizer's normaliser does it (e.g. lower-casing); identity without one."""
    normalizer = getattr(getattr(tokenizer, "backend_tokenizer", None), "normalizer", None)
    return normalizer.normalize_str if normalizer is not None else (lambda word: word)


def segmentation_stats(sentences: Sequence[Sentence | Sequence[str]], seg: Segmentation, *,
                       normalize: Callable[[str], str] | None = None, top_words: int = 20,
                       min_count: int = 3) -> dict[str, Any]:
    """Statistics of one corpus under one tokenizer (JSON-serialisable).

    Fertility = sub-tokens per word (special tokens excluded); sequence length = tokens per
    sentence as the encoder sees them (special tokens included, no truncation). Keys:

    * ``sentences``, ``words``, ``subtokens``; ``fertility_mean``; ``fertility_hist``: share of words
      with 1..7 and 8+ pieces (:data:`FERTILITY_BINS`); ``split_share``: share of words of 2+ pieces;
      ``dropped_words``: words that gave no piece;
    * ``unk_rate``: share of sub-tokens that are UNK; ``unk_word_rate``: share of words with an UNK;
    * ``seq_len_mean``, ``seq_len_p50``, ``seq_len_p95`` (linear interpolation), ``seq_len_max``,
      ``seq_over_128/256/512``: share of sentences longer than that; ``seq_lengths``: every length;
    * when sentences carry tags: ``fertility_entity``, ``fertility_non_entity``, ``fertility_by_type``
      (``{TYPE: mean}``) and ``entity_words``;
    * ``vocab_size``, ``vocab_used`` (distinct ids the corpus uses), ``vocab_used_share``;
    * ``fragmented_words``: up to ``top_words`` words (2+ letters, maybe joined by ``-``/``'``) seen
      ``min_count``+ times that cost the most extra tokens (``(pieces - 1) * count``), grouped by
      ``normalize(word)``.
    """
    words = _words_of(sentences)
    tags = [s.tags for s in sentences] if sentences and all(isinstance(s, Sentence) for s in sentences) else None
    normalize = normalize or (lambda word: word)
    counts = [len(p) for sentence in seg.pieces for p in sentence]
    n_words = len(counts)
    if n_words == 0:
        raise ValueError("segmentation_stats: the corpus has no words")
    subtokens = sum(counts)
    hist = [0] * len(FERTILITY_BINS)
    for n in counts:
        if n:
            hist[min(n, len(FERTILITY_BINS)) - 1] += 1
    flat_ids = [i for sentence in seg.ids for word in sentence for i in word]
    unk_words = sum(1 for sentence in seg.ids for word in sentence if seg.unk_id is not None and seg.unk_id in word)
    lengths = [sum(len(p) for p in sentence) + seg.special_tokens for sentence in seg.pieces]
    used = len(set(flat_ids))
    stats: dict[str, Any] = {
        "sentences": len(seg.pieces),
        "words": n_words,
        "subtokens": subtokens,
        "fertility_mean": subtokens / n_words,
        "fertility_hist": dict(zip(FERTILITY_BINS, (h / n_words for h in hist))),
        "split_share": sum(n >= 2 for n in counts) / n_words,
        "dropped_words": sum(n == 0 for n in counts),
        "unk_rate": (flat_ids.count(seg.unk_id) / subtokens) if subtokens and seg.unk_id is not None else 0.0,
        "unk_word_rate": unk_words / n_words,
        "seq_len_mean": float(np.mean(lengths)),
        "seq_len_p50": float(np.percentile(lengths, 50)),
        "seq_len_p95": float(np.percentile(lengths, 95)),
        "seq_len_max": int(max(lengths)),
        **{f"seq_over_{limit}": sum(n > limit for n in lengths) / len(lengths) for limit in SEQ_LENGTH_LIMITS},
        "vocab_size": seg.vocab_size,
        "vocab_used": used,
        "vocab_used_share": used / seg.vocab_size if seg.vocab_size else 0.0,
    }
    if tags is not None:
        by_type: dict[str, list[int]] = {}
        entity, other = [], []
        for sentence_tags, sentence_pieces in zip(tags, seg.pieces):
            for tag, pieces in zip(sentence_tags, sentence_pieces):
                if tag == "O":
                    other.append(len(pieces))
                else:
                    entity.append(len(pieces))
                    by_type.setdefault(tag[2:], []).append(len(pieces))
        stats["entity_words"] = len(entity)
        stats["fertility_entity"] = float(np.mean(entity)) if entity else None
        stats["fertility_non_entity"] = float(np.mean(other)) if other else None
        stats["fertility_by_type"] = {t: float(np.mean(v)) for t, v in sorted(by_type.items())}
    frequency: Counter[str] = Counter()
    example: dict[str, list[str]] = {}
    for sentence_words, sentence_pieces in zip(words, seg.pieces):
        for word, pieces in zip(sentence_words, sentence_pieces):
            if len(pieces) >= 2 and _WORDLIKE.fullmatch(word):
                key = normalize(word)
                frequency[key] += 1
                example.setdefault(key, pieces)
    ranked = sorted(((len(example[w]) - 1) * c, c, w) for w, c in frequency.items() if c >= min_count)
    stats["fragmented_words"] = [
        {"word": w, "count": c, "pieces": example[w], "extra_tokens": extra}
        for extra, c, w in sorted(ranked, key=lambda r: (-r[0], -r[1], r[2]))[:top_words]
    ]
    stats["seq_lengths"] = lengths
    return stats


def tokenization_stats(tokenizer: PreTrainedTokenizerBase, sentences: Sequence[Sentence | Sequence[str]], *,
                       top_words: int = 20, min_count: int = 3) -> dict[str, Any]:
    """:func:`segment` then :func:`segmentation_stats` (words grouped by the tokenizer's normaliser)."""
    return segmentation_stats(sentences, segment(tokenizer, sentences), normalize=word_normaliser(tokenizer),
                              top_words=top_words, min_count=min_count)


def same_pieces_share(a: Segmentation, b: Segmentation) -> float:
    """Share of word occurrences that ``a`` and ``b`` (same sentences) split into the same piece strings."""
    if len(a.pieces) != len(b.pieces):
        raise ValueError(f"same_pieces_share: {len(a.pieces)} vs {len(b.pieces)} sentences")
    same = total = 0
    for sa, sb in zip(a.pieces, b.pieces):
        if len(sa) != len(sb):
            raise ValueError("same_pieces_share: the segmentations cover different words")
        total += len(sa)
        same += sum(pa == pb for pa, pb in zip(sa, sb))
    return same / total if total else 0.0


def vocab_overlap(vocab_a: Iterable[str], vocab_b: Iterable[str]) -> dict[str, float]:
    """Overlap of two vocabularies as strings: ``shared`` entries, ``size_a``, ``size_b``,
    ``share_of_a`` (shared / size_a), ``share_of_b`` and ``jaccard`` (shared / union).

    Piece strings are compared as they are: a ``##`` continuation piece only matches the same
    ``##`` piece, so tokenizers of different families (``##`` vs ``Ġ``/``▁``) overlap little.
    """
    a, b = set(vocab_a), set(vocab_b)
    shared = len(a & b)
    union = len(a | b)
    return {"shared": shared, "size_a": len(a), "size_b": len(b),
            "share_of_a": shared / len(a) if a else 0.0, "share_of_b": shared / len(b) if b else 0.0,
            "jaccard": shared / union if union else 0.0}


def embedding_params(vocab_size: int, hidden_size: int) -> int:
    """Parameters of a word-embedding matrix: ``vocab_size x hidden_size``."""
    return int(vocab_size) * int(hidden_size)


# ============================================================================ tables and plots


def format_markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """Markdown table: ``columns`` are ``(key, header, format)``; a missing or None value prints as ``-``."""
    lines = ["| " + " | ".join(header for _, header, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            cells.append("-" if value is None else fmt.format(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _figure(rows: int, cols: int, width: float, height: float):
    from matplotlib.figure import Figure  # the OO API: no pyplot, no global backend (Agg for PNG)

    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _corpus_name(corpus: str, domains: dict[str, str]) -> str:
    return f"{corpus} ({domains[corpus]})" if domains.get(corpus) else corpus


def plot_fertility_hist(results: dict[str, dict[str, dict]], domains: dict[str, str] | None = None):
    """Bars of the share of words split into 1, 2, ... 8+ pieces, one panel per tokenizer, one bar
    per corpus; ``results[tokenizer][corpus]`` is a :func:`segmentation_stats` dict."""
    domains = domains or {}
    tokenizers = list(results)
    fig, axes = _figure(1, len(tokenizers), 6.0, 4.2)
    for ax, name in zip(axes[0], tokenizers):
        corpora = list(results[name])
        width = 0.8 / max(len(corpora), 1)
        x = np.arange(len(FERTILITY_BINS))
        for k, corpus in enumerate(corpora):
            stats = results[name][corpus]
            shares = [100 * stats["fertility_hist"][b] for b in FERTILITY_BINS]
            ax.bar(x + (k - (len(corpora) - 1) / 2) * width, shares, width,
                   label=f"{_corpus_name(corpus, domains)}: {stats['fertility_mean']:.3f} tok/word")
        ax.set_yscale("log")
        ax.set_xticks(x, FERTILITY_BINS)
        ax.set_xlabel("sub-tokens per word")
        ax.set_ylabel("% of words (log scale)")
        ax.set_title(f"Fertility: {name}")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def plot_seq_lengths(results: dict[str, dict[str, dict]], domains: dict[str, str] | None = None):
    """Step histograms of tokens per sentence (special tokens included), % of sentences per bin, per
    corpus, one panel per tokenizer. The x axis stops near the 99th percentile (at least 140, so the
    128 limit shows); the legend gives mean, p95 and the share over 128 / 512 for the whole tail."""
    domains = domains or {}
    tokenizers = list(results)
    fig, axes = _figure(1, len(tokenizers), 6.0, 4.2)
    every = [n for r in results.values() for s in r.values() for n in s["seq_lengths"]]
    right = max(140.0, float(np.percentile(every, 99)) * 1.15)
    bins = np.linspace(0, right, 41)
    for ax, name in zip(axes[0], tokenizers):
        for corpus, stats in results[name].items():
            lengths = np.minimum(stats["seq_lengths"], right)
            ax.hist(lengths, bins=bins, histtype="step", linewidth=1.6,
                    weights=np.full(len(lengths), 100.0 / len(lengths)),
                    label=f"{_corpus_name(corpus, domains)}: mean {stats['seq_len_mean']:.1f}, "
                          f"p95 {stats['seq_len_p95']:.0f}, >128 {stats['seq_over_128']:.1%}, "
                          f">512 {stats['seq_over_512']:.1%}")
        for limit in SEQ_LENGTH_LIMITS:
            if limit <= right:
                ax.axvline(limit, color="grey", linestyle="--", linewidth=0.8)
                ax.annotate(f"{limit}", (limit, 1), xycoords=("data", "axes fraction"), color="grey", fontsize=8,
                            xytext=(2, -10), textcoords="offset points")
        ax.set_xlim(0, right)
        ax.set_xlabel(f"tokens per sentence (with [CLS]/[SEP]; last bin: {right:.0f}+)")
        ax.set_ylabel("% of sentences")
        ax.set_title(f"Sequence length: {name}")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def plot_fertility_summary(results: dict[str, dict[str, dict]], domains: dict[str, str] | None = None):
    """The headline: mean sub-tokens per word per corpus (general corpora first), one bar per
    tokenizer, for all words and for words inside entities."""
    domains = domains or {}
    tokenizers = list(results)
    corpora = sorted({c for r in results.values() for c in r},
                     key=lambda c: (domains.get(c) != "general", c))
    fig, axes = _figure(1, 2, 6.0, 4.2)
    x = np.arange(len(corpora))
    width = 0.8 / max(len(tokenizers), 1)
    for ax, key, title in ((axes[0][0], "fertility_mean", "all words"),
                           (axes[0][1], "fertility_entity", "words inside entities")):
        for k, name in enumerate(tokenizers):
            values = [results[name].get(c, {}).get(key) or 0.0 for c in corpora]
            bars = ax.bar(x + (k - (len(tokenizers) - 1) / 2) * width, values, width, label=name)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(x, [_corpus_name(c, domains) for c in corpora], rotation=15, fontsize=8)
        ax.set_ylabel("sub-tokens per word")
        ax.set_ylim(1.0, None)
        ax.set_title(f"Fertility, {title}")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    return fig


# ============================================================================ domain text


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 text file (``.gz`` decompressed), read line by line."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"byte 0x{raw[err.start]:02x} is not valid UTF-8; the file must be UTF-8 encoded",
                                path, number) from None
            yield number, line.lstrip("\ufeff") if number == 1 else line


def _jsonl_texts(path: Path, text_field: str) -> Iterator[str]:
    for number, line in _text_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"not valid JSON ({err.msg}); expected one JSON object per line", path, number) from None
        if isinstance(record, dict) and isinstance(record.get(text_field), str):
            yield record[text_field]
        elif isinstance(record, dict) and isinstance(record.get("tokens"), list):
            yield " ".join(str(t) for t in record["tokens"])
        else:
            found = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise DataError(f"no text field {text_field!r} (a string) or 'tokens' list; found {found}. "
                            "Give the field with the `text_field` parameter", path, number)


def _parquet_texts(path: Path, text_field: str) -> Iterator[str]:
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    if text_field not in handle.schema_arrow.names:
        raise DataError(f"no column {text_field!r}; columns: {', '.join(handle.schema_arrow.names)}. "
                        "Give the column with the `text_field` parameter", path)
    for batch in handle.iter_batches(columns=[text_field], batch_size=1024):
        yield from (text for text in batch.column(0).to_pylist() if isinstance(text, str))


def _dataset_texts(dataset: Any, source: str, text_field: str) -> Iterator[str]:
    columns = list(dataset.column_names or [])
    if columns and text_field not in columns:
        raise DataError(f"no column {text_field!r}; columns: {', '.join(columns)}. "
                        "Give the column with the `text_field` parameter", source)
    for batch in dataset.iter(batch_size=1024):
        yield from (text for text in batch[text_field] if isinstance(text, str))


def _train_split(loaded: Any, source: str) -> Any:
    if hasattr(loaded, "keys"):  # a DatasetDict: never read its validation/test splits
        if "train" not in loaded:
            raise DataError(f"has splits {', '.join(loaded)} but no 'train' split; domain text is read from "
                            "train only (never from a test split)", source)
        return loaded["train"]
    return loaded


def _file_texts(path: Path, text_field: str) -> Iterator[str]:
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz", ".json")):
        yield from _jsonl_texts(path, text_field)
    elif name.endswith(".parquet"):
        yield from _parquet_texts(path, text_field)
    else:
        yield from (line for _, line in _text_lines(path))


def _source_texts(source: str, text_field: str) -> Iterator[str]:
    path = Path(source)
    if is_saved_dataset(path):
        import datasets

        yield from _dataset_texts(_train_split(datasets.load_from_disk(os.fspath(path)), source), source, text_field)
    elif path.is_dir():
        files = [f for f in sorted(path.iterdir()) if f.is_file() and not is_ignored_file(f)
                 and split_for_file_name(f) not in ("validation", "test")]
        if not files:
            raise DataError("holds no text files (validation/test files are never read as domain text)", path)
        for file in files:
            yield from _file_texts(file, text_field)
    elif path.is_file():
        yield from _file_texts(path, text_field)
    elif source.startswith((".", "/", "~")) or Path(source).suffix or source.count("/") > 1:
        raise DataError("no such file or folder; expected a text file (one text per line), a JSONL file with a "
                        f"{text_field!r} field, a parquet file, a folder of such files or a save_to_disk folder",
                        path)
    else:  # a Hub dataset id, streamed
        import datasets

        try:
            dataset = datasets.load_dataset(source, split="train", streaming=True)
        except Exception as err:  # datasets raises many types here (connection, offline, not found)
            raise DataError(f"not a local file or folder, and loading it from the dataset hub failed "
                            f"({type(err).__name__}); offline, give a local text/JSONL/parquet file or a "
                            "save_to_disk folder", source) from err
        yield from _dataset_texts(dataset, source, text_field)


def iter_text(source: str | os.PathLike, *, text_field: str = "text", max_lines: int = 0) -> Iterator[str]:
    """Stream the non-blank texts of an unlabeled corpus (one text per line or record).

    ``source``: a UTF-8 text file (``.txt``, anything else, ``.gz`` decompressed), a JSONL file (a
    ``text_field`` string, or a ``tokens`` list joined by spaces), a parquet file (column
    ``text_field``), a folder of such files (README/LICENSE and files named as validation/test
    splits skipped), a ``save_to_disk`` dataset (its ``train`` split) or a Hub dataset id
    (streamed). ``max_lines`` > 0 stops after that many texts. Raises DataError naming the source
    when it does not exist, a record lacks the field, or it holds no text at all.
    """
    source = os.fspath(source)
    count = 0
    for text in _source_texts(source, text_field):
        text = text.strip()
        if not text:
            continue
        yield text
        count += 1
        if max_lines and count >= max_lines:
            return
    if count == 0:
        raise DataError("contains no text (every line or record is empty); expected one text per line", source)


def sentence_texts(sentences: Iterable[Sentence]) -> Iterator[str]:
    """Each labelled sentence as text: its words joined by spaces (the tags are not used)."""
    for sentence in sentences:
        yield " ".join(sentence.tokens)


def count_words(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str]) -> Counter[str]:
    """Word counts of ``texts`` as ``tokenizer`` sees them: after its normaliser (e.g. lower-casing)
    and pre-tokeniser (whitespace and punctuation splits), before its model splits words into pieces."""
    backend = tokenizer.backend_tokenizer
    normalize = word_normaliser(tokenizer)
    pre = backend.pre_tokenizer
    counts: Counter[str] = Counter()
    for text in texts:
        normalized = normalize(text)
        if pre is None:
            counts.update(normalized.split())
        else:
            counts.update(word for word, _ in pre.pre_tokenize_str(normalized))
    return counts


# ============================================================================ building tokenizers


@dataclass
class BuiltTokenizer:
    """A domain tokenizer and what was decided while building it (``info``: JSON-serialisable)."""

    tokenizer: PreTrainedTokenizerFast
    info: dict[str, Any] = field(default_factory=dict)


def _backend_json(tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    return json.loads(tokenizer.backend_tokenizer.to_str())


def _special_entries(teacher_json: dict[str, Any]) -> list[dict[str, Any]]:
    """The teacher's special added tokens, in id order."""
    return sorted((t for t in teacher_json.get("added_tokens", []) if t.get("special")), key=lambda t: t["id"])


def _token_id(vocab: dict[str, int], token: str) -> int:
    if token not in vocab:
        raise ConfigError(f"special token {token!r} of the teacher is missing from the new vocabulary")
    return vocab[token]


def _remap_ids(node: Any, vocab: dict[str, int]) -> Any:
    """A post-processor JSON with the ids of its special tokens looked up in ``vocab``
    (TemplateProcessing, BertProcessing, RobertaProcessing and Sequences of them)."""
    if isinstance(node, list):
        return [_remap_ids(item, vocab) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("sep", "cls") and isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
            out[key] = [value[0], _token_id(vocab, value[0])]
        elif key == "special_tokens" and isinstance(value, dict):
            out[key] = {name: {**spec, "ids": [_token_id(vocab, t) for t in spec["tokens"]]}
                        for name, spec in value.items()}
        else:
            out[key] = _remap_ids(value, vocab)
    return out


def _assemble(core: Tokenizer, teacher: PreTrainedTokenizerBase, *, keep_decoder: bool = True
              ) -> PreTrainedTokenizerFast:
    """Wrap a new model in the teacher's pipeline: its normaliser, pre-tokeniser, special tokens
    (same flags, new ids), post-processor (ids remapped) and decoder."""
    teacher_json = _backend_json(teacher)
    data = json.loads(core.to_str())
    vocab = core.get_vocab(with_added_tokens=True)
    data["normalizer"] = teacher_json.get("normalizer")
    data["pre_tokenizer"] = teacher_json.get("pre_tokenizer")
    data["post_processor"] = _remap_ids(teacher_json.get("post_processor"), vocab)
    data["decoder"] = teacher_json.get("decoder") if keep_decoder else None
    data["added_tokens"] = [{**entry, "id": _token_id(vocab, entry["content"])}
                            for entry in _special_entries(teacher_json)]
    specials = {attr: getattr(teacher, attr) for attr in _SPECIAL_ATTRS if getattr(teacher, attr, None) is not None}
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(data)),
                                   model_max_length=teacher.model_max_length, **specials)


def _wordpiece_settings(teacher: PreTrainedTokenizerBase, method: str) -> dict[str, Any]:
    model = _backend_json(teacher)["model"]
    if model.get("type") != "WordPiece":
        raise ConfigError(f"parameter 'method': {method!r} needs a WordPiece teacher tokenizer (BERT-style '##' "
                          f"pieces); this teacher's model is {model.get('type')!r}. Use method=train")
    return model


def _check_text(counts: Counter[str]) -> None:
    if not counts:
        raise DataError("the domain text is empty: no words to build a tokenizer from")


def train_new_tokenizer(teacher: PreTrainedTokenizerBase, texts: Iterable[str], vocab_size: int, *,
                        model_type: str = "wordpiece", min_frequency: int = 2) -> BuiltTokenizer:
    """Train a ``model_type`` tokenizer of ``vocab_size`` entries on ``texts`` with the ``tokenizers``
    library, inside the teacher's pipeline (normaliser, pre-tokeniser, special tokens, post-processor).

    WordPiece and BPE mark word-internal pieces with the teacher's continuation prefix (``##``).
    The trainers keep the whole alphabet of the text: a ``vocab_size`` below special tokens +
    alphabet raises ConfigError naming the minimum. ``texts`` is consumed once (streamed).
    """
    if model_type not in MODEL_TYPES:
        raise ConfigError(f"parameter 'model_type': expected one of {', '.join(MODEL_TYPES)}, got {model_type!r}")
    teacher_json = _backend_json(teacher)
    specials = [t["content"] for t in _special_entries(teacher_json)]
    unk = teacher.unk_token or (specials[0] if specials else "[UNK]")
    if vocab_size <= len(specials):
        raise ConfigError(f"parameter 'vocab_size': expected more than the {len(specials)} special tokens "
                          f"({', '.join(specials)}) plus the alphabet of the text, got {vocab_size}")
    prefix = teacher_json["model"].get("continuing_subword_prefix") or "##"
    if model_type == "wordpiece":
        core = Tokenizer(models.WordPiece(unk_token=unk, continuing_subword_prefix=prefix,
                                          max_input_chars_per_word=teacher_json["model"].get(
                                              "max_input_chars_per_word", 100)))
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=specials, continuing_subword_prefix=prefix,
                                            show_progress=False)
    elif model_type == "bpe":
        core = Tokenizer(models.BPE(unk_token=unk, continuing_subword_prefix=prefix))
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                      continuing_subword_prefix=prefix, show_progress=False)
    else:
        core = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token=unk,
                                          show_progress=False)
    backend = teacher.backend_tokenizer
    core.normalizer = backend.normalizer
    core.pre_tokenizer = backend.pre_tokenizer
    seen = {"lines": 0}

    def counted() -> Iterator[str]:
        for text in texts:
            seen["lines"] += 1
            yield text

    try:
        core.train_from_iterator(counted(), trainer=trainer)
    except Exception as err:  # the Rust trainers raise a bare Exception, e.g. Unigram's "not large enough"
        if "not large enough" in str(err):
            raise ConfigError(f"parameter 'vocab_size': {vocab_size} is too small for the alphabet of the text "
                              f"plus {len(specials)} special tokens ({err})") from None
        raise
    if seen["lines"] == 0 or core.get_vocab_size() <= len(specials):
        raise DataError("the domain text is empty: no words to train a tokenizer on")
    size = core.get_vocab_size(with_added_tokens=True)
    if size > vocab_size:
        raise ConfigError(f"parameter 'vocab_size': expected at least {size} for this text ({len(specials)} special "
                          f"tokens + {size - len(specials)} characters of its alphabet and their {prefix} forms), "
                          f"got {vocab_size}")
    tokenizer = _assemble(core, teacher, keep_decoder=model_type != "unigram")
    return BuiltTokenizer(tokenizer, {"method": "train", "model_type": model_type, "vocab_size": len(tokenizer),
                                      "requested_vocab_size": vocab_size, "min_frequency": min_frequency,
                                      "text_lines": seen["lines"]})


def _single_character(piece: str, prefix: str) -> bool:
    return len(piece) == 1 or (piece.startswith(prefix) and len(piece) == len(prefix) + 1)


def _wordpiece_tokenizer(teacher: PreTrainedTokenizerBase, settings: dict[str, Any], vocab: list[str]
                         ) -> PreTrainedTokenizerFast:
    core = Tokenizer(models.WordPiece(vocab={piece: i for i, piece in enumerate(vocab)},
                                      unk_token=settings["unk_token"],
                                      continuing_subword_prefix=settings.get("continuing_subword_prefix", "##"),
                                      max_input_chars_per_word=settings.get("max_input_chars_per_word", 100)))
    return _assemble(core, teacher)


def _teacher_pieces(teacher: PreTrainedTokenizerBase, words: Iterable[str]) -> dict[str, list[str]]:
    """The teacher model's pieces of each (already normalised, pre-tokenised) word."""
    model = teacher.backend_tokenizer.model
    return {word: [t.value for t in model.tokenize(word)] for word in words}


def trim_vocabulary(teacher: PreTrainedTokenizerBase, word_counts: Counter[str], vocab_size: int) -> BuiltTokenizer:
    """The teacher's WordPiece vocabulary cut to ``vocab_size`` entries: its special tokens, every
    single-character piece (``a`` and ``##a``), then the pieces the teacher's segmentation of
    ``word_counts`` uses most (ties: lower teacher id first), and when every used piece fits, the
    teacher's other pieces in its id order (``[unusedN]`` excepted). Entries keep the teacher's order.

    ``word_counts`` come from :func:`count_words` with the teacher. A word whose pieces are all
    kept is split exactly as the teacher splits it. Filling matters: a vocabulary cut to the pieces
    of a small labelled train split splits unseen entity names into characters (measured on
    FiNER-ORD: the fine-tuned teacher falls from 0.778 to 0.686 test F1 with every used piece kept,
    0.742 with the vocabulary filled to 16k).
    """
    settings = _wordpiece_settings(teacher, "trim")
    _check_text(word_counts)
    prefix = settings.get("continuing_subword_prefix", "##")
    teacher_vocab = teacher.get_vocab()
    specials = {t["content"] for t in _special_entries(_backend_json(teacher))}
    base = specials | {p for p in teacher_vocab if _single_character(p, prefix)}
    if vocab_size < len(base):
        raise ConfigError(f"parameter 'vocab_size': expected at least {len(base)} for trim ({len(specials)} special "
                          f"tokens + {len(base) - len(specials)} single-character pieces of the teacher with their "
                          f"{prefix} forms, kept so that every word still tokenizes), got {vocab_size}")
    pieces_of = _teacher_pieces(teacher, word_counts)
    piece_counts: Counter[str] = Counter()
    for word, count in word_counts.items():
        for piece in pieces_of[word]:
            piece_counts[piece] += count
    candidates = sorted((p for p in piece_counts if p not in base), key=lambda p: (-piece_counts[p], teacher_vocab[p]))
    # room left after every piece the text uses: the teacher's other pieces in its own id order (for BERT
    # vocabularies roughly general-text frequency), so words the domain text never showed split less
    general = sorted((p for p in teacher_vocab if p not in base and p not in piece_counts
                      and not re.fullmatch(r"\[unused\d+\]", p)), key=teacher_vocab.__getitem__)
    room = vocab_size - len(base)
    kept = base | set(candidates[:room]) | set(general[:max(0, room - len(candidates))])
    vocab = sorted(kept, key=teacher_vocab.__getitem__)
    tokenizer = _wordpiece_tokenizer(teacher, settings, vocab)
    total = sum(word_counts.values())
    covered = sum(c for w, c in word_counts.items() if all(p in kept for p in pieces_of[w]))
    return BuiltTokenizer(tokenizer, {
        "method": "trim", "vocab_size": len(vocab), "requested_vocab_size": vocab_size,
        "teacher_vocab_size": len(teacher_vocab), "teacher_pieces_used": len(piece_counts),
        "base_pieces": len(base), "frequent_pieces_kept": min(room, len(candidates)),
        "general_pieces_added": max(0, min(room - len(candidates), len(general))),
        "covered_word_share": covered / total,
    })


def extend_vocabulary(teacher: PreTrainedTokenizerBase, word_counts: Counter[str], vocab_size: int, *,
                      min_frequency: int = 2) -> BuiltTokenizer:
    """The teacher's WordPiece vocabulary plus whole domain words, up to ``vocab_size`` entries.

    Candidates: words with a letter, seen ``min_frequency``+ times, that the teacher splits into
    2+ pieces (none UNK); ranked by the tokens they save, ``(pieces - 1) * count``. New words get
    ids after the teacher's, whose ids are unchanged. As the first piece of a longer word a new
    word may change that word's split (greedy longest match). ``vocab_size`` is the size of the
    result, so it must exceed the teacher's; with fewer candidates the result is smaller.
    """
    settings = _wordpiece_settings(teacher, "extend")
    _check_text(word_counts)
    teacher_vocab = teacher.get_vocab()
    if vocab_size <= len(teacher_vocab):
        raise ConfigError(f"parameter 'vocab_size': for extend expected more than the teacher's {len(teacher_vocab)} "
                          f"entries (the words added are vocab_size - {len(teacher_vocab)}), got {vocab_size}")
    unk = settings["unk_token"]
    frequent = [w for w, c in word_counts.items()
                if c >= min_frequency and w not in teacher_vocab and _LETTER.search(w)]
    pieces_of = _teacher_pieces(teacher, frequent)
    scored = sorted(((len(pieces_of[w]) - 1) * word_counts[w], w) for w in frequent
                    if len(pieces_of[w]) >= 2 and unk not in pieces_of[w])
    added = [w for _, w in sorted(scored, key=lambda s: (-s[0], s[1]))[:vocab_size - len(teacher_vocab)]]
    vocab = [p for p, _ in sorted(teacher_vocab.items(), key=lambda item: item[1])] + added
    tokenizer = _wordpiece_tokenizer(teacher, settings, vocab)
    return BuiltTokenizer(tokenizer, {
        "method": "extend", "vocab_size": len(vocab), "requested_vocab_size": vocab_size,
        "teacher_vocab_size": len(teacher_vocab), "candidates": len(scored), "added_words": len(added),
        "min_frequency": min_frequency, "first_added": added[:50],
    })


def build_tokenizer(method: str, teacher: PreTrainedTokenizerBase, texts: Callable[[], Iterable[str]],
                    vocab_size: int, *, model_type: str = "wordpiece", min_frequency: int = 2) -> BuiltTokenizer:
    """Build a domain tokenizer by ``method`` (:data:`METHODS`) from ``texts()``, a fresh stream of
    domain texts per call (read twice for ``train``: once to count, once to train).

    ``info`` adds the text statistics (``text_words``, ``text_distinct_words``) and, for every
    method, ``teacher_pieces_used``: how many teacher pieces the text uses.
    """
    if method not in METHODS:
        raise ConfigError(f"parameter 'method': expected one of {', '.join(METHODS)}, got {method!r}")
    counts = count_words(teacher, texts())
    _check_text(counts)
    if method == "train":
        built = train_new_tokenizer(teacher, texts(), vocab_size, model_type=model_type, min_frequency=min_frequency)
    elif method == "trim":
        built = trim_vocabulary(teacher, counts, vocab_size)
    else:
        built = extend_vocabulary(teacher, counts, vocab_size, min_frequency=min_frequency)
    if "teacher_pieces_used" not in built.info:
        pieces_of = _teacher_pieces(teacher, counts)
        built.info["teacher_pieces_used"] = len({p for pieces in pieces_of.values() for p in pieces})
    built.info.update(text_words=sum(counts.values()), text_distinct_words=len(counts))
    return built
