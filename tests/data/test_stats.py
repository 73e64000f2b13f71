"""Tests for findistill.data: readers, schemes, split rules, the shared corpora, errors, stats."""

from __future__ import annotations

import json
import re

import pytest

from findistill.data.corpus import NerData, Sentence
from findistill.data.stats import dataset_stats, stats_metrics
from findistill.data.tags import build_label_list


def test_dataset_stats_and_metrics_on_known_case():
    s1 = Sentence(["Apple", "Inc", "sued", "John"], ["B-ORG", "I-ORG", "O", "B-PER"])
    s2 = Sentence(["Hi"], ["O"])
    s3 = Sentence(["Mary", "Ann", "met", "Bob", "at", "IBM", "."], ["B-PER", "I-PER", "O", "B-PER", "O", "B-ORG", "O"])
    long = Sentence(["x"] * 130, ["O"] * 130)
    adjacent = Sentence(["Acme", "Borealis"], ["B-ORG", "B-ORG"])  # two entities
    data = NerData(splits={"train": [s1, s2, s3], "validation": [s2, adjacent], "test": [long, s1]},
                   labels=build_label_list(["ORG", "PER"]), scheme="IO", files={"train": "t"}, notes=["n"])
    stats = dataset_stats(data)
    train = stats["train"]
    assert (train["sentences"], train["tokens"], train["entities"]) == (3, 12, 5)
    assert train["entities_by_type"] == {"ORG": 2, "PER": 3}
    assert train["len_mean"] == 4.0 and train["len_p50"] == 4.0 and train["len_max"] == 7
    assert train["len_p95"] == pytest.approx(6.7)
    assert stats["validation"]["entities_by_type"] == {"ORG": 2, "PER": 0}
    assert stats["test"]["share_len_over_128"] == 0.5 and stats["test"]["share_len_over_256"] == 0.0
    assert stats["labels"] == data.labels and stats["scheme"] == "IO" and stats["notes"] == ["n"]
    assert stats["validation_unit"] == "given"
    json.dumps(stats)

    metrics = stats_metrics(stats)
    assert metrics["train_sentences"] == 3.0 and metrics["train_entities_PER"] == 3.0
    assert metrics["test_len_max"] == 130.0 and metrics["test_share_len_over_128"] == 0.5
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", name) for name in metrics)
    assert all(isinstance(value, float) for value in metrics.values())
