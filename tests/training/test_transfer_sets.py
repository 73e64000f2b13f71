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
