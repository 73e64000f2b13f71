"""Tiny random BERT models built from a config (no downloads), shared by the unit tests."""

from __future__ import annotations

import torch
from conftest import LABELS
from transformers import BertConfig, BertForTokenClassification

#: a 18-entry toy vocabulary: special tokens, whole words, two continuation pieces
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "bank", "net", "income", "rose", "fell", "profit", "shares", "in", "q3", "."]
PIECES = ["##s", "##ed"]
V = len(SPECIAL) + len(WORDS) + len(PIECES)  # 18
H, P, LAYERS, FFN, N_LABELS = 32, 64, 2, 64, 5
#: sentences whose words are all in the toy vocabulary
SENTENCES = [
    ["the", "bank", "rose", "."],
    ["net", "income", "fell", "in", "q3", "."],
    ["the", "shares", "rose"],
    ["profit", "fell", "."],
]


def tiny_config(**overrides) -> BertConfig:
    """A 2-layer, 32-wide BERT config over the toy vocabulary with ``N_LABELS`` labels (``overrides`` win)."""
    kwargs = {"vocab_size": V, "hidden_size": H, "num_hidden_layers": LAYERS, "num_attention_heads": 2,
              "intermediate_size": FFN, "max_position_embeddings": P, "num_labels": N_LABELS}
    kwargs.update(overrides)
    return BertConfig(**kwargs)


def bert_classifier(layers: int = 4, width: int = 32, vocab: int = 64, seed: int = 0) -> BertForTokenClassification:
    """A random BERT token classifier over the NER ``LABELS`` of conftest, in eval mode."""
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab, hidden_size=width, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * width, max_position_embeddings=128, num_labels=len(LABELS),
                        id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)})
    return BertForTokenClassification(config).eval()
