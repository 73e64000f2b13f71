"""Distillation losses as pure tensor functions over word-pooled outputs.

- :func:`kd_loss`: KL(softmax(z_t/T) || softmax(z_s/T)) * T^2 over the words both sides see;
- :func:`word_ce_loss`: cross-entropy with the gold label (-100 ignored);
- :func:`hidden_state_loss`: MSE or cosine distance between hidden states;
- :func:`attention_loss`: KL between attention distributions (same tokenizer only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from findistill.models.words import IGNORE_INDEX

LOSSES = ("kd", "ce", "hidden", "attention")
HIDDEN_LOSSES = ("mse", "cosine")
POOLINGS = ("first", "mean")


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(teacher/T) || softmax(student/T)) * T^2, averaged over the positions where ``mask`` is set.

    student, teacher: [..., n_labels] logits; mask: [...] bool. No position: 0 (still in the graph).
    """
    if not bool(mask.any()):
        return student.sum() * 0.0
    log_s = F.log_softmax(student[mask].float() / temperature, dim=-1)
    log_t = F.log_softmax(teacher[mask].float() / temperature, dim=-1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean") * temperature**2


def word_ce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of word logits [..., n_labels] against labels [...] (-100 ignored; none: 0)."""
    if not bool((labels != IGNORE_INDEX).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=IGNORE_INDEX)


def hidden_state_loss(student: torch.Tensor, teacher: torch.Tensor, kind: str = "mse",
                      projection: nn.Module | None = None) -> torch.Tensor:
    """Distance between student [n, d_s] and teacher [n, d_t] vectors: mean squared error or 1 - cosine.

    ``projection`` maps d_s to d_t when the widths differ (required then).
    """
    if projection is not None:
        student = projection(student)
    if student.shape[-1] != teacher.shape[-1]:
        raise ValueError(f"hidden sizes differ (student {student.shape[-1]}, teacher {teacher.shape[-1]}) and no "
                         "projection was given")
    if len(student) == 0:
        return student.sum() * 0.0
    teacher = teacher.to(student.dtype)
    if kind == "mse":
        return F.mse_loss(student, teacher)
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(student, teacher, dim=-1)).mean()
    raise ValueError(f"hidden_loss must be one of {HIDDEN_LOSSES}, got {kind!r}")


def attention_loss(student: torch.Tensor, teacher: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) between attention distributions [batch, heads, q, k], averaged over heads
    and real (unpadded) query positions. Padded keys have ~0 probability on both sides."""
    eps = 1e-12
    kl = (teacher * (torch.log(teacher + eps) - torch.log(student + eps))).sum(-1)  # [b, h, q]
    valid = attention_mask.bool().unsqueeze(1).expand_as(kl)
    return kl[valid].mean() if bool(valid.any()) else kl.sum() * 0.0


def words_present(word_index: torch.Tensor, n_words: int) -> torch.Tensor:
    """[batch, n_words] bool: the word owns at least one sub-token (word_index [batch, tokens], -1 none)."""
    present = torch.zeros(word_index.shape[0], n_words + 1, dtype=torch.bool, device=word_index.device)
    target = torch.where(word_index >= 0, word_index, torch.full_like(word_index, n_words)).clamp(max=n_words)
    present.scatter_(1, target, True)
    return present[:, :n_words]
