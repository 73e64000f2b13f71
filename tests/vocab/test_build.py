"""Tokenization analysis on hand-built cases with known answers, domain text streaming, and the
three ways of building a domain tokenizer (train / trim / extend), with their errors."""

import pytest
from conftest import FINANCE, SPECIALS
from transformers import AutoTokenizer

from findistill.config import ValueProblem
from findistill.data.corpus import DataError
from findistill.models.loading import load_tokenizer
from findistill.vocab.build import build_tokenizer, count_words, extend_vocabulary, train_new_tokenizer, trim_vocabulary


def test_words_are_counted_as_the_tokenizer_sees_them(packaged_tokenizer):
    counts = count_words(packaged_tokenizer, ["The U.S. Borrower", "the borrower"])
    assert counts == {"the": 2, "borrower": 2, "u": 1, ".": 2, "s": 1}


@pytest.mark.parametrize("model_type", ["wordpiece", "bpe", "unigram"])
def test_trained_tokenizer_round_trips_through_autotokenizer(packaged_tokenizer, tmp_path, model_type):
    built = train_new_tokenizer(packaged_tokenizer, iter(FINANCE), 200, model_type=model_type, min_frequency=1)
    tokenizer = built.tokenizer
    assert len(tokenizer) <= 200 and built.info["vocab_size"] == len(tokenizer)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "The BORROWER shall repay the revenue ."
    assert loaded.is_fast and loaded(text).input_ids == tokenizer(text).input_ids
    ids = loaded(text).input_ids
    assert loaded.convert_ids_to_tokens([ids[0], ids[-1]]) == ["[CLS]", "[SEP]"]  # teacher's post-processor
    assert [loaded.convert_ids_to_tokens(i) for i in range(5)] == SPECIALS  # teacher's specials, in its id order
    assert loaded.tokenize("BORROWER") == loaded.tokenize("borrower")  # teacher's lower-casing kept
    assert loaded.pad_token == "[PAD]" and loaded.mask_token == "[MASK]" and loaded.model_max_length == 512
    assert load_tokenizer(str(tmp_path))(text).input_ids == ids


def test_trim_keeps_the_teacher_segmentation_of_covered_words(packaged_tokenizer):
    counts = count_words(packaged_tokenizer, FINANCE)
    built = trim_vocabulary(packaged_tokenizer, counts, 2100)
    trimmed = built.tokenizer
    vocab = trimmed.get_vocab()
    assert built.info["covered_word_share"] == 1.0
    # every piece the text uses is kept; the room left is filled with the teacher's lowest-id pieces
    assert len(trimmed) == 2100 and built.info["general_pieces_added"] == 2100 - 1999 - built.info[
        "frequent_pieces_kept"] > 0
    assert "the" in vocab and not any(p.startswith("[unused") for p in vocab)
    assert {"a", "##a", "z", "##z", "[CLS]"} <= set(vocab)  # every single character, so any word tokenizes
    for text in FINANCE[:5]:
        assert trimmed.tokenize(text) == packaged_tokenizer.tokenize(text)
    assert trimmed.tokenize("zebra")  # not in the text: still tokenizes, from characters, no UNK
    assert "[UNK]" not in trimmed.tokenize("zebra quokka")
    order = [packaged_tokenizer.convert_tokens_to_ids(t) for t in trimmed.convert_ids_to_tokens(range(len(trimmed)))]
    assert order == sorted(order)  # the teacher's order is kept


def test_extend_adds_whole_words_after_the_teacher_ids(packaged_tokenizer):
    counts = count_words(packaged_tokenizer, FINANCE)
    assert len(packaged_tokenizer.tokenize("Lindqvist")) > 1
    built = extend_vocabulary(packaged_tokenizer, counts, len(packaged_tokenizer) + 3, min_frequency=2)
    extended = built.tokenizer
    assert len(extended) == len(packaged_tokenizer) + 3 and built.info["added_words"] == 3
    teacher_vocab = packaged_tokenizer.get_vocab()
    extended_vocab = extended.get_vocab()
    assert all(extended_vocab[t] == i for t, i in teacher_vocab.items())  # teacher ids unchanged
    added = extended.convert_ids_to_tokens(range(len(packaged_tokenizer), len(extended)))
    assert built.info["first_added"] == added
    for word in added:
        assert extended.tokenize(word) == [word]


def test_build_reads_a_fresh_stream_per_pass(packaged_tokenizer):
    calls = []

    def texts():
        calls.append(1)
        return iter(FINANCE)

    built = build_tokenizer("train", packaged_tokenizer, texts, 300, min_frequency=1)
    assert len(calls) == 2 and built.info["text_words"] > 0 and built.info["teacher_pieces_used"] > 0


def test_bad_builds_name_the_parameter(packaged_tokenizer):
    with pytest.raises(DataError, match="domain text is empty"):
        build_tokenizer("train", packaged_tokenizer, lambda: iter([]), 8000)
    with pytest.raises(ValueProblem, match=r"vocab_size: expected at least \d+ for this text"):
        train_new_tokenizer(packaged_tokenizer, iter(FINANCE), 20)
    with pytest.raises(ValueProblem, match=r"vocab_size: expected at least 1999 for trim"):
        trim_vocabulary(packaged_tokenizer, count_words(packaged_tokenizer, FINANCE), 1000)
    with pytest.raises(ValueProblem, match=r"vocab_size: for extend expected more than the teacher's 30522"):
        extend_vocabulary(packaged_tokenizer, count_words(packaged_tokenizer, FINANCE), 8000)
    with pytest.raises(ValueProblem, match="method"):
        build_tokenizer("chop", packaged_tokenizer, lambda: iter(FINANCE), 8000)
    with pytest.raises(ValueProblem, match="model_type"):
        train_new_tokenizer(packaged_tokenizer, iter(FINANCE), 8000, model_type="sentencepiece")
