"""Distillation: students by layer selection, word-level losses across tokenizers, the training loop."""

from findistill.data.corpus import Sentence
from findistill.training.transfer_sets import select_transfer, swap_mentions


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
