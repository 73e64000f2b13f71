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


def test_tag_texts_returns_spans_for_each_text(tiny_classifier):
    model, tokenizer = tiny_classifier
    results = tag_texts(model, tokenizer, ["Acme Corp. hired Dana Whitfield.", ""])
    assert len(results) == 2 and results[1] == []
    for span in results[0]:
        assert set(span) == {"entity", "text", "start", "end", "score"}
        assert 0.0 <= span["score"] <= 1.0
