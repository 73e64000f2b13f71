"""Word/sub-token alignment, chunking, pooling, decoding and entity scores."""

import numpy as np
import pytest
import torch
from conftest import LABELS

from findistill.models.words import IGNORE_INDEX, encode, pool_words, predict_word_logits, word_chunks

LABEL2ID = {label: i for i, label in enumerate(LABELS)}


def test_word_chunks_respect_budget_and_never_split_words():
    assert word_chunks([1, 2, 3, 1], budget=3) == [(0, 2), (2, 3), (3, 4)]
    assert word_chunks([5, 1], budget=3) == [(0, 1), (1, 2)]  # an over-long word gets its own chunk
    assert word_chunks([], budget=3) == [(0, 0)]
    with pytest.raises(ValueError):
        word_chunks([1], budget=0)


def test_labels_sit_on_first_subtoken_only(packaged_tokenizer):
    # uncased WordPiece: "Lindqvist" -> lin ##d ##qvist, "refinancing" -> ref ##ina ##nc ##ing
    words = ["Lindqvist", "Freight", "refinancing"]
    tags = ["B-ORG", "I-ORG", "O"]
    (chunk,) = encode(packaged_tokenizer, [words], [tags], LABEL2ID, max_length=64)
    assert chunk.word_index == [-1, 0, 0, 0, 1, 2, 2, 2, 2, -1]
    expected = [IGNORE_INDEX, LABEL2ID["B-ORG"], IGNORE_INDEX, IGNORE_INDEX, LABEL2ID["I-ORG"], LABEL2ID["O"]]
    expected += [IGNORE_INDEX] * 4
    assert chunk.features["labels"] == expected
    assert chunk.labeled_words == [0, 1, 2]


def test_long_sentence_is_chunked_between_words_with_every_label_kept(packaged_tokenizer):
    words = ["Lindqvist"] * 10  # 3 sub-tokens each
    tags = ["B-PER"] * 10
    chunks = encode(packaged_tokenizer, [words], [tags], LABEL2ID, max_length=2 + 7)
    assert [(c.start, c.end) for c in chunks] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    assert all(len(c.features["input_ids"]) <= 9 for c in chunks)
    labelled = sum(sum(1 for x in c.features["labels"] if x != IGNORE_INDEX) for c in chunks)
    assert labelled == 10


def test_word_the_tokenizer_drops_has_no_label_position(packaged_tokenizer):
    (chunk,) = encode(packaged_tokenizer, [["Acme", "\u200b", "Corp"]], [["B-ORG", "O", "I-ORG"]], LABEL2ID)
    assert chunk.labeled_words == [0, 2]


def test_pool_words_first_and_mean_on_handbuilt_alignment():
    # two tokenisations of the same 3 words: A splits word 1 in two, B splits word 2 in three
    states = torch.tensor([[[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [6.0]]])  # [1, 7, 1]
    word_index = torch.tensor([[-1, 0, 1, 1, 2, -1, -1]])
    assert pool_words(states, word_index, 3, "first").squeeze(-1).tolist() == [[1.0, 2.0, 4.0]]
    assert pool_words(states, word_index, 3, "mean").squeeze(-1).tolist() == [[1.0, 2.5, 4.0]]
    other = torch.tensor([[[10.0], [20.0], [30.0], [40.0], [50.0], [60.0], [0.0]]])
    other_index = torch.tensor([[-1, 0, 1, 2, 2, 2, -1]])
    assert pool_words(other, other_index, 3, "mean").squeeze(-1).tolist() == [[20.0, 30.0, 50.0]]
    # a word with no sub-token pools to zeros; gradients flow to the pooled positions
    states = torch.ones(1, 3, 2, requires_grad=True)
    pooled = pool_words(states, torch.tensor([[-1, 0, -1]]), 2, "first")
    assert pooled[0, 1].tolist() == [0.0, 0.0]
    pooled.sum().backward()
    assert states.grad[0].tolist() == [[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    with pytest.raises(ValueError):
        pool_words(states, torch.tensor([[-1, 0, -1]]), 2, "max")


def test_predict_word_logits_covers_every_word_of_long_sentences(tiny_classifier):
    model, tokenizer = tiny_classifier
    long_sentence = ["refinancing"] * 150  # 600 sub-tokens: longer than max_length
    logits = predict_word_logits(model, tokenizer, [long_sentence, ["Acme"]], max_length=64, batch_size=4)
    assert [x.shape for x in logits] == [(150, len(LABELS)), (1, len(LABELS))]
    assert np.all(np.abs(logits[0]).sum(-1) > 0)  # no word left without a prediction
    # chunking must not change what a word sees when the sentence fits: same logits either way
    short = ["Harbor", "Point", "Capital"]
    a = predict_word_logits(model, tokenizer, [short], max_length=64)[0]
    b = predict_word_logits(model, tokenizer, [short, long_sentence], max_length=64, batch_size=1)[0]
    np.testing.assert_allclose(a, b, atol=1e-5)
