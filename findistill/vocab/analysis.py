"""How a tokenizer splits a corpus: fertility, split share, UNK rates, sequence lengths, vocabulary use.

Pure functions over a fast tokenizer and pre-split words. :func:`segment` tokenises every word of a
corpus into its pieces (a :class:`Segmentation`); :func:`segmentation_stats` turns that into
fertility (sub-tokens per word), the share of words split into 2+ pieces, UNK rates, sequence
lengths in tokens, fertility per entity type, the most fragmented frequent words and the share of
the vocabulary the corpus uses. :func:`same_pieces_share` and :func:`vocab_overlap` compare two
tokenizers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

from findistill.data.corpus import Sentence

#: Fertility histogram bins: words of 1, 2, ... 7 pieces, then 8 or more.
FERTILITY_BINS = ("1", "2", "3", "4", "5", "6", "7", "8+")
#: Sequence lengths (tokens, special tokens included) whose excess share is reported.
SEQ_LENGTH_LIMITS = (128, 256, 512)
LETTER = re.compile(r"[^\W\d_]")
#: A word in the plain sense: 2+ letters, optionally joined by hyphens or apostrophes ("ebitda-adjusted").
_WORDLIKE = re.compile(r"[^\W\d_]{2,}(?:[-'’][^\W\d_]+)*")


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
