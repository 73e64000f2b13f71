"""Word/sub-token alignment, chunking, pooling, decoding and entity scores."""

import numpy as np
import pytest
from conftest import LABELS

from findistill.evaluation.scoring import chunk_predictions_to_tags, decode, entity_scores, repair_iob2
from findistill.models.words import IGNORE_INDEX, encode

LABEL2ID = {label: i for i, label in enumerate(LABELS)}


def test_repair_iob2_reads_stray_inside_tags_as_beginnings():
    assert repair_iob2(["O", "I-ORG", "I-ORG", "I-PER", "B-LOC", "I-LOC"]) == [
        "O", "B-ORG", "I-ORG", "B-PER", "B-LOC", "I-LOC"]


def test_decode_takes_argmax_then_repairs():
    labels = ["O", "B-ORG", "I-ORG"]
    logits = [np.array([[0, 0, 5.0], [0, 0, 5.0], [5.0, 0, 0]], dtype=np.float32), np.zeros((0, 3))]
    assert decode(logits, labels) == [["B-ORG", "I-ORG", "O"], []]


def test_entity_scores_hand_computed():
    gold = [["B-PER", "I-PER", "O", "B-ORG", "I-ORG"], ["B-LOC", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG", "O"], ["B-LOC", "B-LOC"]]
    # gold: PER, ORG, LOC (3); predicted: PER, ORG(wrong span), LOC, LOC (4); correct: PER, LOC (2)
    scores = entity_scores(gold, pred)
    assert scores["precision"] == pytest.approx(2 / 4)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert scores["f1_ORG"] == 0.0 and scores["f1_PER"] == 1.0
    assert scores["precision_LOC"] == pytest.approx(0.5) and scores["recall_LOC"] == 1.0
    assert scores["support_LOC"] == 1.0
    with pytest.raises(ValueError):
        entity_scores(gold, pred[:1])


def test_strict_mode_does_not_count_invalid_iob2_entity():
    # an entity starting with I- is invalid in strict IOB2: it scores as a miss
    assert entity_scores([["B-ORG", "I-ORG"]], [["I-ORG", "I-ORG"]])["f1"] == 0.0


def test_chunk_predictions_are_reassembled_per_sentence(packaged_tokenizer):
    sentences = [["Lindqvist"] * 4, ["Harbor", "Point"]]
    tags = [["B-PER", "I-PER", "O", "B-PER"], ["B-ORG", "I-ORG"]]
    chunks = encode(packaged_tokenizer, sentences, tags, LABEL2ID, max_length=2 + 6)
    width = max(len(c.features["input_ids"]) for c in chunks)
    gold_ids = np.full((len(chunks), width), IGNORE_INDEX)
    for i, c in enumerate(chunks):
        gold_ids[i, : len(c.features["labels"])] = c.features["labels"]
    predicted = np.where(gold_ids == IGNORE_INDEX, 0, gold_ids)  # a perfect model
    rebuilt = chunk_predictions_to_tags(chunks, predicted, gold_ids, [4, 2], LABELS)
    assert rebuilt == tags
