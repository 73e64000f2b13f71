"""Tests for findistill.resources on a tiny random BERT (no downloads)."""

from __future__ import annotations

import math

from transformers import BertConfig

from findistill.costs.flops import encoder_flops, peak_matmul_flops

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


WORDS = ["the", "bank", "net", "income", "rose", "fell", "profit", "shares", "in", "q3", "."]


PIECES = ["##s", "##ed"]


V = len(SPECIAL) + len(WORDS) + len(PIECES)  # 18
H, P, LAYERS, FFN, LABELS = 32, 64, 2, 64, 5


def tiny_config(**overrides) -> BertConfig:
    kwargs = dict(
        vocab_size=V,
        hidden_size=H,
        num_hidden_layers=LAYERS,
        num_attention_heads=2,
        intermediate_size=FFN,
        max_position_embeddings=P,
        num_labels=LABELS,
    )
    kwargs.update(overrides)
    return BertConfig(**kwargs)


def test_encoder_flops_hand_computed():
    config = tiny_config()
    per_layer = sum(2 * (4 * H * H + 2 * H * FFN) * n + 2 * 2 * n * n * H for n in (3, 5))
    # 2*(4096 + 4096)*3 + 4*9*32  +  2*(4096 + 4096)*5 + 4*25*32  = 49152+1152 + 81920+3200
    assert per_layer == 135_424
    assert encoder_flops(config, [3, 5]) == LAYERS * 135_424
    assert encoder_flops(tiny_config(num_hidden_layers=2 * LAYERS), [3, 5]) == 2 * LAYERS * 135_424
    assert encoder_flops(config, []) == 0


def test_peak_matmul_flops_is_positive_and_plausible():
    flops = peak_matmul_flops("cpu", n=128, repeats=2)
    assert math.isfinite(flops) and 1e6 < flops < 1e14
