"""Distillation: students by layer selection, word-level losses across tokenizers, the training loop."""

import math

import pytest
import torch

from findistill.training.kd_losses import attention_loss, hidden_state_loss, kd_loss


def test_kd_loss_equals_the_hand_computed_kl_times_t_squared():
    # word 1: teacher [0, 1, 0], student [1, 0, 0] at T = 2: softmax of [0, .5, 0] vs [.5, 0, 0];
    # KL = p_big * .5 - p_small * .5 with p_big = e^.5 / (2 + e^.5), p_small = 1 / (2 + e^.5); x T^2 = 4.
    # word 2: identical logits (KL 0); word 3: masked out (must not count).
    student = torch.tensor([[[1.0, 0.0, 0.0], [3.0, 1.0, 2.0], [9.0, -9.0, 0.0]]])
    teacher = torch.tensor([[[0.0, 1.0, 0.0], [3.0, 1.0, 2.0], [-9.0, 9.0, 0.0]]])
    mask = torch.tensor([[True, True, False]])
    e = math.exp(0.5)
    expected_word1 = 4 * 0.5 * (e - 1) / (2 + e)
    assert kd_loss(student, teacher, mask, 2.0).item() == pytest.approx(expected_word1 / 2, rel=1e-6)
    assert kd_loss(student, teacher, mask, 1.0).item() != pytest.approx(expected_word1 / 2, rel=1e-3)
    assert kd_loss(student, teacher, torch.zeros_like(mask), 2.0).item() == 0.0


def test_hidden_state_loss_mse_cosine_and_projection():
    s, t = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    assert hidden_state_loss(s, t, "mse").item() == pytest.approx((0 + 1 + 0 + 1) / 4)
    assert hidden_state_loss(s, t, "cosine").item() == pytest.approx((1 - 1 / math.sqrt(2) + 0) / 2)
    wide = torch.ones(2, 3)
    with pytest.raises(ValueError, match="hidden sizes differ"):
        hidden_state_loss(s, wide)
    projection = torch.nn.Linear(2, 3)
    torch.nn.init.zeros_(projection.weight)
    torch.nn.init.ones_(projection.bias)  # maps everything onto the teacher's ones
    assert hidden_state_loss(s, wide, "mse", projection).item() == 0.0


def test_attention_loss_ignores_padded_queries():
    teacher = torch.softmax(torch.randn(1, 2, 3, 3), -1)
    student = teacher.clone()
    student[0, :, 2] = torch.tensor([1.0, 0.0, 0.0])  # differs only at a padded query
    assert attention_loss(student, teacher, torch.tensor([[1, 1, 0]])).item() == pytest.approx(0.0, abs=1e-6)
    assert attention_loss(student, teacher, torch.tensor([[1, 1, 1]])).item() > 0.01
