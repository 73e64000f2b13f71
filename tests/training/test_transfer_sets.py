"""Distillation: students by layer selection, word-level losses across tokenizers, the training loop."""

import numpy as np
import pytest

from findistill.config import ValueProblem
from findistill.data.corpus import Sentence
from findistill.training.transfer_sets import (
    draw_sentences,
    entity_choice,
    entity_word_counts,
    select_transfer,
    sentence_key,
    swap_mentions,
)


def test_swap_mentions_replaces_entities_by_same_type_mentions():
    train = [Sentence(["Acme", "Corp", "hired", "Dana"], ["B-ORG", "I-ORG", "O", "B-PER"]),
             Sentence(["Lindqvist", "sued", "Borealis"], ["B-PER", "O", "B-ORG"])]
    out = swap_mentions(train, 30, seed=3)
    assert out == swap_mentions(train, 30, seed=3) and len(out) == 30
    orgs, people = {("Acme", "Corp"), ("Borealis",)}, {("Dana",), ("Lindqvist",)}
    for words in out:
        if "hired" in words:
            i = words.index("hired")
            assert tuple(words[:i]) in orgs and tuple(words[i + 1:]) in people
        else:
            i = words.index("sued")
            assert tuple(words[:i]) in people and tuple(words[i + 1:]) in orgs
    assert len({tuple(w) for w in out}) > 2  # new combinations, not copies
    held_out = [Sentence(["Acme", "Corp", "hired", "Dana"], ["O"] * 4)]
    assert ["Acme", "Corp", "hired", "Dana"] not in select_transfer(out, 100, 0, held_out)


def test_swap_mentions_swaps_adjacent_mentions_one_by_one():
    train = [Sentence(["Acme", "Borealis", "Bank", "merged"], ["B-ORG", "B-ORG", "I-ORG", "O"])]
    out = swap_mentions(train, 40, seed=1)
    mentions = (["Acme"], ["Borealis", "Bank"])
    assert out and all(words[-1] == "merged" for words in out)
    seen = set()
    for words in out:
        first = next(m for m in mentions if words[:len(m)] == m)
        assert words[len(first):-1] in mentions
        seen.add(tuple(words))
    assert len(seen) == 4  # each of the two mentions is drawn on its own


def test_the_sentences_with_most_entity_words_are_kept_in_their_order_ties_to_the_earlier():
    outside = 0
    scores = [np.eye(3)[tags] for tags in ([0, 1, 2, 0], [0, 0], [1, 1, 0], [2], [0, 2, 0])]
    present = [np.ones(len(s), bool) for s in scores]
    present[0][1] = False  # a word the model never saw does not count, whatever its (zero) row says
    counts = entity_word_counts(scores, present, outside)
    assert counts.tolist() == [1, 0, 2, 1, 1]
    candidates = [["a"], ["b"], ["c"], ["d"], ["e"]]
    # 2 words in "c", then 1 in "a", "d" and "e": the first two of those (the seeded draw's order) win
    assert [candidates[i] for i in entity_choice(counts, 3)] == [["a"], ["c"], ["d"]]
    assert [candidates[i] for i in entity_choice(counts, 10)] == candidates


def test_a_share_of_the_set_is_chosen_for_entities_and_the_rest_is_the_start_of_the_draw():
    counts = np.array([0, 5, 0, 0, 4, 9, 0, 3])
    # 4 of 8 at share 0.5: the first 2 of the draw whatever their counts (0 and 5 entity words), then the 2
    # with the most entity words among the others (9 and 4); not the 5 again
    assert entity_choice(counts, 4, 0.5).tolist() == [0, 1, 4, 5]
    assert entity_choice(counts, 4, 1.0).tolist() == [1, 4, 5, 7]
    assert entity_choice(counts, 4, 0.0).tolist() == [0, 1, 2, 3]
    assert entity_choice(counts, 20, 0.5).tolist() == list(range(8))
    candidates = [[str(i)] for i in range(8)]
    assert [candidates[i] for i in entity_choice(counts, 4, 0.5)] == [["0"], ["1"], ["4"], ["5"]]
    with pytest.raises(ValueProblem, match="share"):
        entity_choice(counts, 4, 1.5)


def test_a_draw_never_holds_an_excluded_or_empty_sentence_and_is_the_transfer_draw_of_its_seed():
    candidates = [[f"w{i}", "rose"] for i in range(50)] + [[]]
    excluded = {sentence_key(["w1", "rose"]), sentence_key(["w2rose"])}  # the same sentence split another way
    drawn = draw_sentences(candidates, 100, 7, excluded)
    assert len(drawn) == 48 and [] not in drawn
    assert ["w1", "rose"] not in drawn and ["w2", "rose"] not in drawn and ["w3", "rose"] in drawn
    assert draw_sentences(candidates, 10, 7, excluded) == drawn[:10] != draw_sentences(candidates, 10, 8, excluded)
    held_out = [Sentence(["w1", "rose"], ["O", "O"]), Sentence(["w2rose"], ["O"])]
    assert select_transfer(candidates, 10, 7, held_out) == drawn[:10]
