"""Statistics of a prepared corpus: sentences, words, entities per type and split, as a dict and as metrics.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from findistill.data.corpus import SPLITS, NerData, Sentence
from findistill.data.tags import entity_spans


def _quantile(sorted_values: list[int], q: float) -> float:
    """Returns the ``q`` quantile of sorted values by linear interpolation (numpy's default), 0.0 if empty."""
    if not sorted_values:
        return 0.0
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low))


def _split_stats(sentences: list[Sentence], entity_types: list[str]) -> dict[str, Any]:
    """Returns the statistics of one split: counts, entities per type, sentence lengths in tokens."""
    lengths = sorted(len(sentence.tokens) for sentence in sentences)
    entities = Counter(entity_type for sentence in sentences for entity_type, _, _ in entity_spans(sentence.tags))
    count = len(lengths)
    return {
        "sentences": count,
        "tokens": sum(lengths),
        "entities": sum(entities.values()),
        "entities_by_type": {t: entities.get(t, 0) for t in sorted(set(entity_types) | set(entities))},
        "len_mean": sum(lengths) / count if count else 0.0,
        "len_p50": _quantile(lengths, 0.5),
        "len_p95": _quantile(lengths, 0.95),
        "len_max": lengths[-1] if lengths else 0,
        "share_len_over_128": sum(n > 128 for n in lengths) / count if count else 0.0,
        "share_len_over_256": sum(n > 256 for n in lengths) / count if count else 0.0,
    }


def dataset_stats(data: NerData) -> dict:
    """Returns JSON-serialisable statistics: one dict per split plus labels, scheme, files, notes.

    Per split: ``sentences``, ``tokens``, ``entities`` (see :func:`~findistill.data.tags.entity_spans`),
    ``entities_by_type``, sentence length in tokens (``len_mean``, ``len_p50``, ``len_p95``
    (linear interpolation), ``len_max``) and the share of sentences longer than 128 and 256
    tokens (``share_len_over_128``, ``share_len_over_256``, in [0, 1]). ``validation_unit``: how
    the validation split was made (see :class:`~findistill.data.corpus.NerData`).
    """
    stats: dict[str, Any] = {split: _split_stats(data.splits.get(split, []), data.entity_types) for split in SPLITS}
    stats.update(labels=list(data.labels), scheme=data.scheme, files=dict(data.files), notes=list(data.notes),
                 validation_unit=data.validation_unit)
    return stats


def _metric_name(*parts: str) -> str:
    """Returns ``parts`` joined by "_" with every character outside [A-Za-z0-9_] replaced by "_"."""
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts))


def stats_metrics(stats: dict) -> dict[str, float]:
    """Returns flat MLflow metrics from :func:`dataset_stats` output.

    Names are ``{split}_{statistic}`` (``train_sentences``, ``train_len_p95``...) and
    ``{split}_entities_{TYPE}`` per entity type, plus ``num_labels``; only [A-Za-z0-9_].
    """
    metrics: dict[str, float] = {}
    for split in SPLITS:
        for key, value in stats.get(split, {}).items():
            if key == "entities_by_type":
                for entity_type, count in value.items():
                    metrics[_metric_name(split, "entities", entity_type)] = float(count)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[_metric_name(split, key)] = float(value)
    if "labels" in stats:
        metrics["num_labels"] = float(len(stats["labels"]))
    return metrics
