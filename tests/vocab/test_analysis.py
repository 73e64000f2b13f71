"""Tokenization analysis on hand-built cases with known answers, domain text streaming, and the
three ways of building a domain tokenizer (train / trim / extend), with their errors."""

import json

import pytest
from conftest import SPECIALS, wordpiece_tokenizer

from findistill.data.corpus import Sentence
from findistill.vocab.analysis import (
    embedding_params,
    format_markdown_table,
    same_pieces_share,
    segment,
    segmentation_stats,
    tokenization_stats,
    vocab_overlap,
)

TINY = ["the", "bank", "fin", "##ance", "##s", "x", "##y"]


SENTENCES = [Sentence(["The", "finances", "bank"], ["O", "B-ORG", "I-ORG"]),
             Sentence(["xyz", "bank"], ["B-PER", "O"])]


def test_fertility_and_friends_on_a_hand_built_case():
    tokenizer = wordpiece_tokenizer(TINY)
    seg = segment(tokenizer, SENTENCES)
    # the | fin ##ance ##s | bank ; xyz -> [UNK] (no ##z) | bank
    assert seg.pieces == [[["the"], ["fin", "##ance", "##s"], ["bank"]], [["[UNK]"], ["bank"]]]
    stats = segmentation_stats(SENTENCES, seg, min_count=1)
    assert stats["words"] == 5 and stats["subtokens"] == 7
    assert stats["fertility_mean"] == pytest.approx(7 / 5)
    assert stats["split_share"] == pytest.approx(1 / 5)
    assert stats["fertility_hist"]["1"] == pytest.approx(4 / 5) and stats["fertility_hist"]["3"] == pytest.approx(1 / 5)
    assert stats["unk_rate"] == pytest.approx(1 / 7) and stats["unk_word_rate"] == pytest.approx(1 / 5)
    assert stats["seq_lengths"] == [7, 4]  # with [CLS] and [SEP]
    assert stats["seq_len_mean"] == pytest.approx(5.5) and stats["seq_len_p95"] == pytest.approx(4 + 0.95 * 3)
    assert stats["seq_over_128"] == 0.0
    assert stats["fertility_entity"] == pytest.approx(5 / 3) and stats["fertility_non_entity"] == pytest.approx(1.0)
    assert stats["fertility_by_type"] == {"ORG": pytest.approx(2.0), "PER": pytest.approx(1.0)}
    assert stats["vocab_used"] == 6 and stats["vocab_size"] == len(SPECIALS) + len(TINY)
    assert stats["fragmented_words"] == [
        {"word": "finances", "count": 1, "pieces": ["fin", "##ance", "##s"], "extra_tokens": 2}]
    json.dumps(stats)  # loggable as is


def test_plain_word_lists_have_no_entity_statistics():
    stats = tokenization_stats(wordpiece_tokenizer(TINY), [s.tokens for s in SENTENCES])
    assert stats["fertility_mean"] == pytest.approx(7 / 5) and "fertility_entity" not in stats


def test_same_pieces_and_vocabulary_overlap():
    a = wordpiece_tokenizer(TINY)
    b = wordpiece_tokenizer(TINY + ["finances"])  # splits "finances" whole, the rest as a does
    assert same_pieces_share(segment(a, SENTENCES), segment(b, SENTENCES)) == pytest.approx(4 / 5)
    overlap = vocab_overlap(["a", "b", "c"], ["b", "c", "d", "e"])
    assert overlap == {"shared": 2, "size_a": 3, "size_b": 4, "share_of_a": pytest.approx(2 / 3),
                       "share_of_b": 0.5, "jaccard": pytest.approx(2 / 5)}
    assert embedding_params(8000, 384) == 3_072_000


def test_markdown_table_prints_missing_values_as_dashes():
    table = format_markdown_table([{"a": 1.23456, "b": None}], [("a", "A", "{:.2f}"), ("b", "B", "{}")])
    assert table.splitlines() == ["| A | B |", "|---|---|", "| 1.23 | - |"]
