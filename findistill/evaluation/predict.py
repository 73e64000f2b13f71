"""A token classifier on sentences and raw text: evaluation on labelled splits, entity spans for raw text,
and the tags of a reference model on unlabeled sentences (agreement with it is scored like F1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from findistill.data.corpus import DataError, Sentence
from findistill.data.tags import entity_spans
from findistill.data.text import split_words
from findistill.evaluation.scoring import decode, entity_report, entity_scores
from findistill.models.loading import model_labels
from findistill.models.words import predict_word_logits


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


def reference_labels(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, sentences: Sequence[Sequence[str]],
                     *, batch_size: int = 32, max_length: int = 256, device: str | torch.device = "cpu",
                     ) -> list[Sentence]:
    """``sentences`` (unlabeled words) tagged by ``model``: the reference against which
    :func:`evaluate_ner` scores another model's agreement (entity F1 with these tags as gold)."""
    model.to(device)
    logits = predict_word_logits(model, tokenizer, sentences, batch_size=batch_size, max_length=max_length,
                                 device=device)
    return [Sentence(list(words), tags) for words, tags in zip(sentences, decode(logits, model_labels(model)),
                                                                strict=True)]


def spans_from_tags(words: Sequence[tuple[str, int, int]], tags: Sequence[str], text: str,
                    scores: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """IOB2 word tags -> ``[{"entity", "text", "start", "end", "score"}]`` over ``text`` (offsets in characters).

    ``words[i]`` is ``(word, start, end)``; the entities are those of
    :func:`~findistill.data.tags.entity_spans`. ``score`` is the mean probability of the
    predicted tag over the entity's words (1.0 without ``scores``).
    """
    spans: list[dict[str, Any]] = []
    for entity_type, first, last in entity_spans(tags):
        start, end = words[first][1], words[last - 1][2]
        span_scores = scores[first:last] if scores is not None else [1.0]
        spans.append({"entity": entity_type, "start": start, "end": end, "text": text[start:end],
                      "score": round(float(np.mean(span_scores)), 4)})
    return spans


def tag_texts(model, tokenizer, texts: Sequence[str], *, max_length: int = 256, batch_size: int = 32,
              device: str = "cpu") -> list[list[dict[str, Any]]]:
    """Entity spans for each raw text (see :func:`spans_from_tags`)."""
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    words = [split_words(t) for t in texts]
    logits = predict_word_logits(
        model, tokenizer, [[w for w, _, _ in ws] for ws in words], batch_size=batch_size, max_length=max_length,
        device=device,
    )
    tags = decode(logits, labels)
    results = []
    for text, ws, lg, tg in zip(texts, words, logits, tags):
        if len(lg):
            shifted = np.exp(lg - lg.max(-1, keepdims=True))
            probs = (shifted / shifted.sum(-1, keepdims=True)).max(-1)
        else:
            probs = []
        results.append(spans_from_tags(ws, tg, text, probs))
    return results


def fill_masks(model, tokenizer, texts: Sequence[str], *, top_k: int = 5, max_length: int = 128) -> list[list[dict]]:
    """For each text, the ``top_k`` candidates of each mask token: ``[{"position", "candidates": [{"token",
    "score"}]}]`` (``[MASK]`` written in the text, in the tokenizer's own mask-token spelling)."""
    import torch

    results = []
    for text in texts:
        encoded = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
        with torch.inference_mode():
            probs = model(**encoded).logits[0].softmax(-1)
        positions = (encoded["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
        masks = []
        for p in positions:
            scores, ids = probs[p].topk(top_k)
            masks.append({"position": p, "candidates": [
                {"token": tokenizer.convert_ids_to_tokens(int(i)), "score": float(s)} for s, i in zip(scores, ids)]})
        results.append(masks)
    return results
