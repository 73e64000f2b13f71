"""Transfer sets: sentences without gold labels on which the student learns the teacher's outputs.

:func:`swap_mentions` makes new sentences from training sentences by swapping entity mentions of
the same type; :func:`select_transfer` draws a transfer set from candidates, never a sentence of
the evaluation splits.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from findistill.config import ConfigError
from findistill.data.corpus import Sentence


def _mentions(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """IOB2 tags -> ``[(start, end, type)]`` (end exclusive)."""
    spans, start, kind = [], None, None
    for i, tag in enumerate([*tags, "O"]):
        if start is not None and not (tag.startswith("I-") and tag[2:] == kind):
            spans.append((start, i, kind))
            start = None
        if tag.startswith("B-") or (tag.startswith("I-") and start is None):
            start, kind = i, tag[2:]
    return spans  # type: ignore[return-value]


def swap_mentions(sentences: Sequence[Sentence], n: int, seed: int) -> list[list[str]]:
    """``n`` new sentences: training sentences whose entity mentions are replaced by random mentions
    of the same type from elsewhere in the training set (mention replacement, Dai & Adel 2020)."""
    pool: dict[str, list[list[str]]] = defaultdict(list)
    with_entities = []
    for s in sentences:
        spans = _mentions(s.tags)
        for a, b, kind in spans:
            pool[kind].append(list(s.tokens[a:b]))
        if spans:
            with_entities.append((s, spans))
    if not with_entities:
        raise ConfigError("parameter 'transfer_data': 'augment' swaps entity mentions, but the training split has none")
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sentence, spans = with_entities[rng.randrange(len(with_entities))]
        words, previous = [], 0
        for a, b, kind in spans:
            words.extend(sentence.tokens[previous:a])
            words.extend(rng.choice(pool[kind]))
            previous = b
        words.extend(sentence.tokens[previous:])
        out.append(words)
    return out


def select_transfer(candidates: list[list[str]], n: int, seed: int, exclude: Sequence[Sentence]) -> list[list[str]]:
    """Up to ``n`` of ``candidates`` (seeded sample), never a sentence that appears in ``exclude``
    (the evaluation splits) and never an empty one."""
    held_out = {" ".join(s.tokens) for s in exclude}
    kept = [words for words in candidates if words and " ".join(words) not in held_out]
    random.Random(seed).shuffle(kept)
    return kept[:n]
