"""Tests for findistill.data: readers, schemes, split rules, the shared corpora, errors, stats."""

from __future__ import annotations

import re

import pytest

from findistill.data.corpus import DataError
from findistill.data.tags import build_label_list, detect_scheme, entity_spans, to_iob2


@pytest.mark.parametrize("tags, scheme", [
    ([["I-PER", "I-PER", "O", "I-ORG"], ["O"]], "IO"),
    ([["I-PER", "I-PER", "B-PER", "O", "I-ORG"]], "IOB1"),
    ([["B-PER", "I-PER", "B-PER", "O", "B-ORG"], ["B-LOC"]], "IOB2"),
    ([["B-PER", "E-PER", "O", "S-ORG"]], "BIOES"),
    ([["O", "O"], []], "IOB2"),  # no entity at all
    ([["B-ORG", "I-ORG", "O", "B-PER"], ["B-LOC", "O"], ["O", "I-ORG"]], "IOB2"),  # one stray I- start is a slip
])
def test_detect_scheme(tags, scheme):
    assert detect_scheme(tags) == scheme


@pytest.mark.parametrize("scheme, tags, expected", [
    ("IO", ["I-PER", "I-PER", "O", "I-ORG"], ["B-PER", "I-PER", "O", "B-ORG"]),
    ("IO", ["I-PER", "I-ORG"], ["B-PER", "B-ORG"]),  # a type change starts a new entity
    ("IO", ["I-PER", "O", "I-PER"], ["B-PER", "O", "B-PER"]),  # two entities
    ("IOB1", ["I-PER", "I-PER", "B-PER", "O", "I-ORG", "I-LOC"], ["B-PER", "I-PER", "B-PER", "O", "B-ORG", "B-LOC"]),
    ("IOB2", ["B-PER", "I-PER", "B-PER", "O", "B-ORG"], ["B-PER", "I-PER", "B-PER", "O", "B-ORG"]),
    ("BIOES", ["B-ORG", "I-ORG", "E-ORG", "S-PER", "O", "B-LOC", "E-LOC"],
     ["B-ORG", "I-ORG", "I-ORG", "B-PER", "O", "B-LOC", "I-LOC"]),
])
def test_to_iob2(scheme, tags, expected):
    assert to_iob2(tags, scheme) == expected


@pytest.mark.parametrize("scheme, tags, says", [
    ("IOB2", ["O", "I-PER"], "token 2"),
    ("IOB2", ["B-ORG", "I-PER"], "token 2"),
    ("IO", ["B-PER"], "not allowed in the IO scheme"),
    ("BIOES", ["B-PER", "O"], "must end with E-PER"),
    ("BIOES", ["B-PER", "I-PER"], "ends inside a PER entity"),
    ("BIOES", ["O", "E-PER"], "token 2"),
])
def test_to_iob2_rejects_invalid_sequences(scheme, tags, says):
    with pytest.raises(DataError, match=re.escape(says)):
        to_iob2(tags, scheme)


def test_build_label_list_is_sorted_and_stable():
    assert build_label_list(["PER", "ORG", "PER", "LOC"]) == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert build_label_list([]) == ["O"]


def test_entity_spans_of_adjacent_entities_and_entity_at_the_end():
    tags = ("B-ORG", "B-ORG", "I-ORG", "O", "B-PER", "I-PER", "B-LOC", "B-PER", "I-PER")
    assert entity_spans(tags) == [("ORG", 0, 1), ("ORG", 1, 3), ("PER", 4, 6), ("LOC", 6, 7), ("PER", 7, 9)]
    assert entity_spans(["B-MISC"]) == [("MISC", 0, 1)]
    assert entity_spans(["O", "O"]) == [] and entity_spans([]) == []


def test_entity_spans_reads_a_stray_i_tag_as_an_entity_start():
    assert entity_spans(["O", "I-ORG", "I-ORG", "I-PER"]) == [("ORG", 1, 3), ("PER", 3, 4)]
