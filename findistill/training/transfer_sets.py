"""Transfer sets: sentences without gold labels on which the student learns the teacher's outputs.

:func:`swap_mentions` makes new sentences from training sentences by swapping entity mentions of
the same type; :func:`select_transfer` draws a transfer set from candidates, never a sentence of
the evaluation splits (:func:`draw_sentences`: never one of a given set of sentences);
:func:`entity_choice` keeps the candidates in which the teacher finds the most entity words, or a
share of them beside a random sample.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Collection, Sequence

import numpy as np

from findistill.config import ValueProblem
from findistill.data.corpus import Sentence
from findistill.data.tags import entity_spans


def swap_mentions(sentences: Sequence[Sentence], n: int, seed: int) -> list[list[str]]:
    """``n`` new sentences: training sentences whose entity mentions are replaced by random mentions
    of the same type from elsewhere in the training set (mention replacement, Dai & Adel 2020)."""
    pool: dict[str, list[list[str]]] = defaultdict(list)
    with_entities = []
    for s in sentences:
        spans = entity_spans(s.tags)
        for kind, a, b in spans:
            pool[kind].append(list(s.tokens[a:b]))
        if spans:
            with_entities.append((s, spans))
    if not with_entities:
        raise ValueProblem("transfer_data", "'augment' swaps entity mentions, but the training split has none")
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sentence, spans = with_entities[rng.randrange(len(with_entities))]
        words, previous = [], 0
        for kind, a, b in spans:
            words.extend(sentence.tokens[previous:a])
            words.extend(rng.choice(pool[kind]))
            previous = b
        words.extend(sentence.tokens[previous:])
        out.append(words)
    return out


def sentence_key(words: Sequence[str]) -> str:
    """A sentence's characters without the spaces between words: the same whichever way it was split
    into words (raw text is split by findistill, an NER corpus by its annotators)."""
    return "".join(words)


def draw_sentences(candidates: Sequence[Sequence[str]], n: int, seed: int,
                   excluded: Collection[str]) -> list[list[str]]:
    """Up to ``n`` of ``candidates`` (seeded sample), never one whose :func:`sentence_key` is in
    ``excluded`` and never an empty one."""
    kept = [list(words) for words in candidates if words and sentence_key(words) not in excluded]
    random.Random(seed).shuffle(kept)
    return kept[:n]


def select_transfer(candidates: list[list[str]], n: int, seed: int, exclude: Sequence[Sentence]) -> list[list[str]]:
    """Up to ``n`` of ``candidates`` (seeded sample), never a sentence that appears in ``exclude``
    (the evaluation splits), however either was split into words, and never an empty one."""
    return draw_sentences(candidates, n, seed, {sentence_key(s.tokens) for s in exclude})


def entity_word_counts(logits: Sequence[np.ndarray], present: Sequence[np.ndarray], outside: int) -> np.ndarray:
    """Per sentence, the words whose highest-scoring label is not ``outside`` (the id of ``O``), among
    the words the model saw (``present``)."""
    return np.array([int(((np.asarray(scores).argmax(-1) != outside) & np.asarray(seen)).sum())
                     for scores, seen in zip(logits, present, strict=True)], dtype=np.int64)


def entity_choice(counts: np.ndarray, n: int, share: float = 1.0) -> np.ndarray:
    """Indices (ascending) of ``n`` of the candidates whose entity words are ``counts`` (e.g.
    :func:`entity_word_counts` of the teacher): the first ``n - round(share * n)`` in their given order
    (after a seeded shuffle, a random sample), and the ``round(share * n)`` with the most entity words
    among the others, among equal counts the earlier ones. ``share`` 1 keeps the ``n`` with the most
    entity words; 0 the first ``n``."""
    if not 0 <= share <= 1:
        raise ValueProblem("share", f"expected a share in [0, 1], got {share}")
    counts = np.asarray(counts)
    n = min(n, len(counts))
    at_random = n - round(share * n)
    rest = np.arange(at_random, len(counts))
    by_entities = rest[np.argsort(-counts[at_random:], kind="stable")[:n - at_random]]
    return np.sort(np.concatenate([np.arange(at_random), by_entities]))

