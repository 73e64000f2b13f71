"""Entity-level scoring: IOB2 decoding, entity spans, seqeval P/R/F1 in strict IOB2 mode.

Predicted tags are first decoded to valid IOB2 (:func:`repair_iob2`: an ``I-X`` that does not
continue an ``X`` entity starts one, as conlleval reads it), the same decoding the served model uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from seqeval.metrics.v1 import (
    classification_report,
    precision_recall_fscore_support,
    unique_labels,
)
from seqeval.scheme import IOB2

from findistill.models.words import IGNORE_INDEX, Chunk


def repair_iob2(tags: Sequence[str]) -> list[str]:
    """Make a predicted tag sequence valid IOB2: an ``I-X`` not continuing an ``X`` entity becomes ``B-X``."""
    fixed, previous = [], "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        fixed.append(tag)
        previous = tag
    return fixed


def decode(word_logits: Sequence[np.ndarray], labels: Sequence[str]) -> list[list[str]]:
    """Argmax word logits [n_words, n_labels] to valid IOB2 tag sequences."""
    return [repair_iob2([labels[i] for i in logits.argmax(-1)]) if len(logits) else [] for logits in word_logits]


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """seqeval strict-IOB2 entity scores.

    Returns ``precision``/``recall``/``f1`` (micro), ``f1_macro``, and per type ``precision_T``,
    ``recall_T``, ``f1_T``, ``support_T`` (gold entities of type T).
    """
    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted)):
        raise ValueError("entity_scores: gold and predicted sequences differ in number or length")
    gold, predicted = [list(g) for g in gold], [list(p) for p in predicted]
    kwargs = {"scheme": IOB2, "zero_division": 0}
    p, r, f, _ = precision_recall_fscore_support(gold, predicted, average="micro", **kwargs)
    scores = {"precision": float(p), "recall": float(r), "f1": float(f)}
    scores["f1_macro"] = float(precision_recall_fscore_support(gold, predicted, average="macro", **kwargs)[2])
    types = unique_labels(gold, predicted, IOB2)  # sorted, the order seqeval reports per-type scores in
    if types:
        per_p, per_r, per_f, per_s = precision_recall_fscore_support(gold, predicted, average=None, **kwargs)
        for t, pv, rv, fv, sv in zip(types, per_p, per_r, per_f, per_s):
            scores.update({f"precision_{t}": float(pv), f"recall_{t}": float(rv), f"f1_{t}": float(fv)})
            scores[f"support_{t}"] = float(sv)
    return scores


def entity_report(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> str:
    """seqeval's per-type classification report (strict IOB2) as text."""
    return classification_report(
        [list(g) for g in gold], [list(p) for p in predicted], scheme=IOB2, digits=4, zero_division=0
    )


def chunk_predictions_to_tags(
    chunks: Sequence[Chunk], predicted_ids: np.ndarray, labels_ids: np.ndarray, sentence_lengths: Sequence[int],
    labels: Sequence[str],
) -> list[list[str]]:
    """Rebuild per-sentence tags from token-level predictions of encoded chunks (Trainer evaluation).

    predicted_ids, labels_ids: [n_chunks, tokens] (label ids, -100 where no word starts). Words with
    no sub-token are tagged ``O``.
    """
    tags = [["O"] * n for n in sentence_lengths]
    for c, pred, gold in zip(chunks, predicted_ids, labels_ids):
        ids = pred[gold != IGNORE_INDEX]
        for w, i in zip(c.labeled_words, ids):
            tags[c.sentence][w] = labels[int(i)]
    return [repair_iob2(t) for t in tags]
