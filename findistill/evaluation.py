"""Entity-level evaluation of a token-classification model on word-labelled sentences."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from findistill.config import ConfigError
from findistill.data import DataError, Sentence
from findistill.models import model_labels
from findistill.ner import decode, entity_report, entity_scores, predict_word_logits


@dataclass
class EvalResult:
    """``scores``: seqeval micro/macro and per-type scores; ``report``: seqeval's text table;
    ``predicted``: IOB2 tags per sentence (same order as the input)."""

    scores: dict[str, float]
    report: str
    predicted: list[list[str]]


def check_label_compatibility(model_label_list: list[str], data_labels: list[str], where: str) -> None:
    """Raise DataError when the data has entity types the model cannot predict."""
    model_types = {label[2:] for label in model_label_list if label != "O"}
    data_types = {label[2:] for label in data_labels if label != "O"}
    missing = sorted(data_types - model_types)
    if missing:
        raise DataError(
            f"{where}: the data has entity types {missing} that the model does not predict "
            f"(model labels: {model_label_list}); fine-tune on data with these types or drop them"
        )


def evaluate_ner(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    sentences: list[Sentence],
    *,
    batch_size: int = 32,
    max_length: int = 256,
    device: str | torch.device = "cpu",
) -> EvalResult:
    """Predict every word of ``sentences`` (long ones in word chunks) and score entities strictly."""
    labels = model_labels(model)
    model.to(device)
    logits = predict_word_logits(
        model, tokenizer, [s.tokens for s in sentences], batch_size=batch_size, max_length=max_length, device=device
    )
    predicted = decode(logits, labels)
    gold = [s.tags for s in sentences]
    return EvalResult(entity_scores(gold, predicted), entity_report(gold, predicted), predicted)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; anything else must be a torch device string."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"parameter 'device': {device!r} requested but CUDA is not available here; use 'cpu' or 'auto'")
    try:
        torch.device(device)
    except RuntimeError:
        raise ConfigError(f"parameter 'device': expected auto, cpu, cuda or cuda:N, got {device!r}") from None
    return device
