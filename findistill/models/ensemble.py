"""An ensemble of token classifiers that share a tokenizer and a label list, used as one model.

Its logits are the arithmetic mean of the members' logits, sub-token by sub-token: for members with
the same tokenizer this equals the mean of their word logits that ``distill`` uses as an ensemble
teacher's soft targets (:func:`findistill.training.distill.mean_word_outputs`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.modeling_outputs import TokenClassifierOutput

from findistill.config import ConfigError
from findistill.models.loading import model_labels


class EnsembleClassifier(nn.Module):
    """Mean of the logits of ``members`` (token classifiers with the same labels in the same order);
    hidden states, when asked for, are the first member's. ``config`` is the first member's."""

    def __init__(self, members: Sequence[PreTrainedModel]):
        super().__init__()
        if not members:
            raise ValueError("EnsembleClassifier needs at least one member")
        self.members = nn.ModuleList(members)
        self.config = members[0].config

    def forward(self, output_hidden_states: bool = False, **inputs: torch.Tensor) -> TokenClassifierOutput:
        outputs = [member(**inputs, output_hidden_states=output_hidden_states) for member in self.members]
        logits = torch.stack([o.logits for o in outputs]).mean(dim=0)
        return TokenClassifierOutput(logits=logits, hidden_states=outputs[0].hidden_states)


def check_labels(refs: Sequence[str], models: Sequence[PreTrainedModel], parameter: str = "model") -> None:
    """Raise ConfigError (naming ``parameter``) for the member whose labels are not the first member's."""
    labels = model_labels(models[0])
    for ref, model in zip(refs[1:], models[1:], strict=True):
        if (own := model_labels(model)) != labels:
            raise ConfigError(f"parameter '{parameter}': ensemble member {ref} has the labels {own}, expected the "
                              f"first member's {labels} (same labels, same order)")


def check_members(refs: Sequence[str], models: Sequence[PreTrainedModel],
                  tokenizers: Sequence[PreTrainedTokenizerBase]) -> None:
    """Raise ConfigError naming the member that does not share the first member's labels or vocabulary."""
    check_labels(refs, models)
    vocabulary = tokenizers[0].get_vocab()
    for ref, tokenizer in zip(refs[1:], tokenizers[1:], strict=True):
        if tokenizer.get_vocab() != vocabulary:
            raise ConfigError(f"parameter 'model': ensemble member {ref} has another vocabulary than {refs[0]}; an "
                              "ensemble evaluated as one model needs one tokenizer (distill's ensemble teacher does "
                              "not)")
