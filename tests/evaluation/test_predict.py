"""Raw text to entity spans: the served model's word splitting, span building and pyfunc round trip."""

import pytest

from findistill.data.text import split_words
from findistill.evaluation.predict import spans_from_tags, tag_texts


def test_spans_from_tags_maps_back_to_characters():
    text = "Dana Whitfield joined First Meridian Bank in Ohio"
    words = split_words(text)
    tags = ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "I-ORG", "O", "B-LOC"]
    spans = spans_from_tags(words, tags, text, [0.9, 0.7, 1, 0.8, 0.8, 0.5, 1, 0.6])
    assert [(s["entity"], s["text"]) for s in spans] == [
        ("PER", "Dana Whitfield"), ("ORG", "First Meridian Bank"), ("LOC", "Ohio")]
    assert spans[0]["score"] == pytest.approx(0.8) and spans[1]["start"] == text.index("First")


def test_spans_from_tags_splits_adjacent_entities_of_one_type():
    text = "Acme Borealis Bank merged"
    words = split_words(text)
    spans = spans_from_tags(words, ["B-ORG", "B-ORG", "I-ORG", "O"], text)
    assert [(s["entity"], s["text"], s["start"], s["end"], s["score"]) for s in spans] == [
        ("ORG", "Acme", 0, 4, 1.0), ("ORG", "Borealis Bank", 5, 18, 1.0)]


def test_tag_texts_returns_spans_for_each_text(tiny_classifier):
    import copy

    import torch

    model, tokenizer = tiny_classifier
    model = copy.deepcopy(model)
    with torch.no_grad():  # a head that tags every word B-ORG: each word becomes an entity of its own
        model.classifier.bias.zero_()
        model.classifier.bias[model.config.label2id["B-ORG"]] = 100.0
    text = "Acme Corp. hired Dana Whitfield."
    results = tag_texts(model, tokenizer, [text, ""])
    assert len(results) == 2 and results[1] == []
    assert [span["text"] for span in results[0]] == ["Acme", "Corp.", "hired", "Dana", "Whitfield", "."]
    for span in results[0]:
        assert set(span) == {"entity", "text", "start", "end", "score"} and span["entity"] == "ORG"
        assert text[span["start"]:span["end"]] == span["text"] and 0.99 <= span["score"] <= 1.0

def test_reference_labels_are_the_models_tags_and_score_agreement_as_entity_f1(tiny_classifier):
    import copy

    import torch

    from findistill.evaluation.predict import evaluate_ner, reference_labels

    model, tokenizer = tiny_classifier

    def always(label: str):
        biased = copy.deepcopy(model)
        with torch.no_grad():
            biased.classifier.bias.zero_()
            biased.classifier.bias[biased.config.label2id[label]] = 100.0
        return biased

    long = [f"word{i}" for i in range(40)]  # more sub-tokens than max_length: tagged in word chunks
    sentences = [["Acme", "Corp", "hired", "Dana"], long, ["profit", "rose"]]
    tagged = reference_labels(always("B-ORG"), tokenizer, sentences, max_length=16)
    assert [s.tokens for s in tagged] == sentences
    assert [s.tags for s in tagged] == [["B-ORG"] * len(words) for words in sentences]
    assert evaluate_ner(always("B-ORG"), tokenizer, tagged, max_length=16).scores["f1"] == 1.0
    assert evaluate_ner(always("B-PER"), tokenizer, tagged, max_length=16).scores["f1"] == 0.0
