"""Raw text in, entity spans out: what ``mlflow models serve`` answers.

The training data is word-tokenised CoNLL-style (punctuation split off, abbreviations such as
``Inc.`` kept whole); :func:`split_words` cuts raw text the same way and keeps character offsets
so predicted entities map back to exact spans of the input.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

import mlflow.pyfunc
from findistill.ner import decode, predict_word_logits

# Order matters: abbreviations with periods (U.S., N.A., Inc.), numbers with separators,
# possessive 's, words with inner hyphens/apostrophes, then any other single non-space character.
_WORD = re.compile(
    r"(?:[A-Za-z]\.){2,}"  # U.S.  N.A.
    r"|(?:Inc|Corp|Co|Ltd|Mr|Mrs|Ms|Dr|Jr|Sr|No|St)\.(?=\s|$|,)"
    r"|\d+(?:[.,:/-]\d+)*"
    r"|['’][sS]\b"  # possessive 's is its own token, as in CoNLL
    r"|\w+(?:[-&]\w+|['’](?![sS]\b)\w+)*"  # Lindqvist-Berg, O'Neill, AT&T
    r"|\S",
)


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Words of ``text`` with character offsets: ``[(word, start, end), ...]`` (end exclusive)."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def spans_from_tags(words: Sequence[tuple[str, int, int]], tags: Sequence[str], text: str,
                    scores: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """IOB2 word tags -> ``[{"entity", "text", "start", "end", "score"}]`` over ``text`` (offsets in characters).

    ``score`` is the mean probability of the predicted tag over the entity's words.
    """
    spans: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for i, ((_, start, end), tag) in enumerate(zip(words, tags)):
        if current is not None and tag != f"I-{current['entity']}":
            spans.append(current)
            current = None
        if tag.startswith("B-"):
            current = {"entity": tag[2:], "start": start, "end": end, "_scores": []}
        if current is not None:
            current["end"] = end
            current["_scores"].append(scores[i] if scores is not None else 1.0)
    if current is not None:
        spans.append(current)
    for span in spans:
        span["text"] = text[span["start"] : span["end"]]
        span["score"] = round(float(np.mean(span.pop("_scores"))), 4)
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


def _texts(model_input: Any) -> list[str]:
    """Accept a DataFrame with a ``text`` column, a list of strings or one string."""
    if isinstance(model_input, str):
        return [model_input]
    if hasattr(model_input, "columns"):
        if "text" not in model_input.columns:
            raise ValueError(f"expected a 'text' column, got columns {list(model_input.columns)}")
        return [str(t) for t in model_input["text"]]
    return [str(t) for t in model_input]


class NerPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper: artifact ``hf_model`` is a save_pretrained folder (model + tokenizer)."""

    def load_context(self, context):  # noqa: ANN001 (MLflow signature)
        from findistill.models import load_token_classifier, load_tokenizer

        self.tokenizer = load_tokenizer(context.artifacts["hf_model"])
        self.model = load_token_classifier(context.artifacts["hf_model"])
        self.model.eval()
        self.max_length = int((context.model_config or {}).get("max_length", 256))

    def predict(self, context, model_input, params=None):  # noqa: ANN001
        """DataFrame ``text`` column (or list of str) -> one list of entity spans per text."""
        return tag_texts(self.model, self.tokenizer, _texts(model_input), max_length=self.max_length)


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


class FillMaskPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper of an adapted masked LM (artifact ``hf_model``): texts with mask tokens in,
    the top candidates of each mask out. ``finetune``/``distill`` use the folder inside as an encoder."""

    def load_context(self, context):  # noqa: ANN001 (MLflow signature)
        from transformers import AutoModelForMaskedLM

        from findistill.models import load_tokenizer

        self.tokenizer = load_tokenizer(context.artifacts["hf_model"])
        self.model = AutoModelForMaskedLM.from_pretrained(context.artifacts["hf_model"], use_safetensors=True)
        self.model.eval()
        self.max_length = int((context.model_config or {}).get("max_length", 128))

    def predict(self, context, model_input, params=None):  # noqa: ANN001
        return fill_masks(self.model, self.tokenizer, _texts(model_input), max_length=self.max_length)
