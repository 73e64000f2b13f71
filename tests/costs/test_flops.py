"""Tests for findistill.costs.flops on tiny random BERTs built from a config (no downloads)."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_bert import FFN, LAYERS, N_LABELS, H, V, tiny_config
from torch.utils.flop_counter import FlopCounterMode
from transformers import BertForTokenClassification, BertModel

from findistill.costs.flops import encoder_flops, mfu, peak_matmul_flops


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


def counted_flops(model: torch.nn.Module, seq_lens: list[int]) -> int:
    """FLOPs that torch's FlopCounterMode counts for one forward pass per unpadded sequence."""
    torch.manual_seed(1)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        for n in seq_lens:  # batch 1 each: no padding, no attention mask
            model(input_ids=torch.randint(0, V, (1, n)))
    return counter.get_total_flops()


@pytest.mark.parametrize("layers, seq_lens", [(2, [3, 7]), (3, [1, 5, 12, 12])])
def test_encoder_flops_equals_torch_flop_counter_on_the_encoder(layers, seq_lens):
    # eager attention: Q.K^T and the sum over V run as bmm, which the counter sees (the fused
    # SDPA kernel on CPU computes the same products but the counter has no formula for it)
    config = tiny_config(num_hidden_layers=layers, attn_implementation="eager")
    encoder = BertModel(config, add_pooling_layer=False).eval()  # embeddings + layers only
    counted = counted_flops(encoder, seq_lens)
    assert counted > 0
    assert encoder_flops(config, seq_lens) == counted


def test_encoder_flops_leaves_out_the_token_classifier_head_only():
    seq_lens = [4, 9]
    config = tiny_config(attn_implementation="eager")
    classifier = BertForTokenClassification(config).eval()
    head = sum(2 * n * H * N_LABELS for n in seq_lens)  # the linear head on every token
    assert counted_flops(classifier, seq_lens) - encoder_flops(config, seq_lens) == head


def test_mfu_is_the_achieved_rate_over_the_peak():
    assert mfu(3e9, 0.5, 12e9) == pytest.approx(0.5)  # 6 GFLOP/s of a 12 GFLOP/s peak
    assert mfu(1e9, 2.0, 1e9) == pytest.approx(0.5)
    assert mfu(0.0, 1.0, 1e9) == 0.0
    with pytest.raises(ValueError):
        mfu(1e9, 0.0, 1e9)
    with pytest.raises(ValueError):
        mfu(1e9, 1.0, 0.0)
