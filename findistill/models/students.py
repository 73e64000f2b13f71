"""Students: fewer layers of the teacher, optionally with a domain vocabulary.

A student is built from a teacher (any BERT-like token classifier) by keeping ``k`` of its ``n``
transformer layers (DistilBERT's initialisation by layer selection) and, optionally, swapping the
vocabulary for a domain tokenizer whose embedding rows are transferred from the teacher's
(:mod:`findistill.models.vocab_transfer`). Embeddings, the kept layers and the NER head are copied
exactly; the result is an ordinary Hugging Face model that ``save_pretrained`` writes as usual.
:func:`narrow_feed_forward` makes the feed-forward blocks narrower (neuron pruning), and
:func:`map_layers` pairs student layers with teacher layers for intermediate distillation.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from findistill.config import ConfigError, ValueProblem
from findistill.models.factorised import factorised_parameters
from findistill.models.vocab_transfer import TRANSFER_METHODS, transfer_model

#: named layer selections; anything else must be an explicit comma-separated list of 0-based indices
LAYER_SELECTIONS = ("uniform", "first")


def layer_list(model: PreTrainedModel) -> nn.ModuleList:
    """The ModuleList of transformer blocks (BERT/RoBERTa/ELECTRA/DeBERTa ``encoder.layer``,
    DistilBERT ``transformer.layer``)."""
    base = model.base_model
    for path in ("encoder.layer", "transformer.layer"):
        module: object = base
        for name in path.split("."):
            module = getattr(module, name, None)
        if isinstance(module, nn.ModuleList):
            return module
    raise ConfigError(f"cannot find the transformer layers of {type(model).__name__}; layer selection supports "
                      "BERT-like encoders (encoder.layer or transformer.layer)")


def select_layers(n_teacher: int, n_student: int, selection: str = "uniform") -> list[int]:
    """0-based indices of the teacher layers that initialise a ``n_student``-layer student.

    ``uniform``: every (n/k)-th layer from the bottom (DistilBERT: 6 -> 3 keeps 0, 2, 4);
    ``first``: the bottom k; or an explicit list such as ``"0,3,5"`` (increasing, its length
    is the depth; ``n_student`` 0 means "as many as listed").
    """
    selection = selection.strip()
    if selection not in LAYER_SELECTIONS:
        try:
            indices = [int(part) for part in selection.split(",") if part.strip()]
        except ValueError:
            raise ValueProblem("layer_selection", f"expected {' or '.join(LAYER_SELECTIONS)} or a "
                              f"comma-separated list of 0-based layer indices, got {selection!r}") from None
        if not indices or any(i < 0 or i >= n_teacher for i in indices):
            raise ValueProblem("layer_selection", f"indices must lie in 0..{n_teacher - 1} (the teacher "
                              f"has {n_teacher} layers), got {selection!r}")
        if indices != sorted(set(indices)):
            raise ValueProblem("layer_selection", f"indices must be increasing and distinct, "
                              f"got {selection!r}")
        if n_student not in (0, len(indices)):
            raise ValueProblem("layer_selection", f"lists {len(indices)} layers but student_layers is "
                              f"{n_student}")
        return indices
    if n_student < 1:
        raise ValueProblem("student_layers", f"expected an integer >= 1, got {n_student}")
    if n_student > n_teacher:
        raise ValueProblem("student_layers", f"a student cannot be deeper than its teacher "
                          f"({n_student} layers asked, the teacher has {n_teacher})")
    if selection == "first":
        return list(range(n_student))
    return [i * n_teacher // n_student for i in range(n_student)]


def keep_layers(model: PreTrainedModel, indices: list[int]) -> PreTrainedModel:
    """A copy of ``model`` with only the transformer layers ``indices`` (in that order); the rest is copied as is."""
    student = copy.deepcopy(model)
    layers = layer_list(student)
    kept = nn.ModuleList([layers[i] for i in indices])
    for position, layer in enumerate(kept):  # keep cache bookkeeping consistent (unused by encoders)
        for module in layer.modules():
            if getattr(module, "layer_idx", None) is not None:
                module.layer_idx = position
    parent = student.base_model.encoder if hasattr(student.base_model, "encoder") else student.base_model.transformer
    parent.layer = kept
    student.config.num_hidden_layers = len(indices)
    return student


#: (up-projection, down-projection, config attribute of their width) of a feed-forward block, by architecture
FEED_FORWARD_PATHS = (("intermediate.dense", "output.dense", "intermediate_size"),  # BERT, RoBERTa, ELECTRA...
                      ("ffn.lin1", "ffn.lin2", "hidden_dim"))  # DistilBERT


def _submodule(module: nn.Module, path: str) -> nn.Module | None:
    for name in path.split("."):
        module = getattr(module, name, None)
    return module


def _feed_forward(layer: nn.Module) -> tuple[dict[str, nn.Linear], str]:
    """``layer``'s feed-forward block: ``{path: module}`` of its up- and down-projection (in that order),
    and the config key of its width."""
    for up_path, down_path, key in FEED_FORWARD_PATHS:
        up, down = _submodule(layer, up_path), _submodule(layer, down_path)
        if isinstance(up, nn.Linear) and isinstance(down, nn.Linear) and up.out_features == down.in_features:
            return {up_path: up, down_path: down}, key
    raise ConfigError(f"cannot find the feed-forward block of {type(layer).__name__}; intermediate_size supports "
                      "BERT-like layers (intermediate.dense and output.dense) and DistilBERT's (ffn.lin1, ffn.lin2)")


def feed_forward_width(model: PreTrainedModel) -> int:
    """The number of hidden units in the feed-forward block of ``model``'s first layer."""
    up, _ = _feed_forward(layer_list(model)[0])[0].values()
    return up.out_features


def neuron_importance(up: nn.Linear, down: nn.Linear) -> torch.Tensor:
    """Score of each hidden unit of a feed-forward block: the norm of its input weights (with bias)
    times the norm of its output weights, a bound on how much the unit can move the block's output."""
    weights_in = up.weight if up.bias is None else torch.cat([up.weight, up.bias[:, None]], dim=1)
    return weights_in.norm(dim=1) * down.weight.norm(dim=0)


def _linear_rows(linear: nn.Linear, keep: torch.Tensor, *, outputs: bool) -> nn.Linear:
    """A copy of ``linear`` restricted to the output units (``outputs``) or input units ``keep``."""
    weight = linear.weight[keep] if outputs else linear.weight[:, keep]
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=linear.bias is not None).to(linear.weight)
    new.weight.copy_(weight)
    if linear.bias is not None:
        new.bias.copy_(linear.bias[keep] if outputs else linear.bias)
    return new


def narrow_feed_forward(model: PreTrainedModel, size: int) -> dict[str, int]:
    """Keep ``size`` hidden units in every feed-forward block of ``model`` (in place): in each layer the
    units of highest :func:`neuron_importance`, in their original order, with their weights and biases
    copied exactly. The width goes into the config, so the result saves and loads as a plain model.
    Returns the feed-forward parameters before and after. ``size`` equal to the current width changes
    nothing; a wider one raises ValueProblem."""
    before = after = 0
    for layer in layer_list(model):
        block, key = _feed_forward(layer)
        (up_path, up), (down_path, down) = block.items()
        if not 1 <= size <= up.out_features:
            raise ValueProblem("intermediate_size", f"expected 0 (the model's own width) or a width in "
                               f"1..{up.out_features} (the model's feed-forward blocks have {up.out_features} "
                               f"units), got {size}")
        with torch.no_grad():
            keep = neuron_importance(up, down).topk(size).indices.sort().values
            replacements = {up_path: _linear_rows(up, keep, outputs=True),
                            down_path: _linear_rows(down, keep, outputs=False)}
        for path, new in replacements.items():
            parent, _, name = path.rpartition(".")
            setattr(_submodule(layer, parent), name, new)
        before += sum(p.numel() for m in (up, down) for p in m.parameters())
        after += sum(p.numel() for m in replacements.values() for p in m.parameters())
        setattr(model.config, key, size)
    return {"feed_forward_params_before": before, "feed_forward_params_after": after}


def student_parameters(teacher: PreTrainedModel, *, n_layers: int = 0, selection: str = "uniform",
                       vocab_size: int = 0, intermediate_size: int = 0, embedding_rank: int = 0,
                       exact_rows: int = 0) -> int:
    """The parameter count (``count_parameters``'s ``params_total``) of the student that
    :func:`build_student`, :func:`narrow_feed_forward` and
    :func:`~findistill.models.factorised.factorise_embeddings` make of ``teacher``, without building it:
    the teacher's count less its dropped layers, less ``(width - intermediate_size) * (inputs + 1 +
    outputs)`` per kept feed-forward block, with the word embeddings resized to ``vocab_size`` rows (0:
    the teacher's) and, at ``embedding_rank`` r > 0, ``r * (rows + H) + (exact_rows + 1) * H`` (no
    exact table without exact rows) in place of ``rows * H``."""
    layers = layer_list(teacher)
    if n_layers == 0 and selection in LAYER_SELECTIONS:
        n_layers = len(layers)
    kept = select_layers(len(layers), n_layers, selection)
    total = sum(p.numel() for p in teacher.parameters())  # shared (tied) tensors are yielded once
    total -= sum(p.numel() for i in range(len(layers)) if i not in kept for p in layers[i].parameters())
    for i in kept if intermediate_size else ():
        (up, down) = _feed_forward(layers[i])[0].values()
        if not 1 <= intermediate_size <= up.out_features:
            raise ValueProblem("intermediate_size", f"expected 0 (the model's own width) or a width in "
                               f"1..{up.out_features}, got {intermediate_size}")
        total -= (up.out_features - intermediate_size) * (up.in_features + int(up.bias is not None)
                                                          + down.out_features)
    embedding = teacher.get_input_embeddings()
    rows, width = embedding.weight.shape
    rows = vocab_size or rows
    words = factorised_parameters(rows, width, embedding_rank, exact_rows) if embedding_rank else rows * width
    return total - sum(p.numel() for p in embedding.parameters()) + words


def build_student(
    teacher: PreTrainedModel,
    teacher_tokenizer: PreTrainedTokenizerBase,
    *,
    n_layers: int = 0,
    selection: str = "uniform",
    tokenizer: PreTrainedTokenizerBase | None = None,
    vocab_transfer: str = "fvt",
    seed: int = 0,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, list[int]]:
    """Student of ``teacher``: its layers ``select_layers(...)`` and, when ``tokenizer`` is given, that vocabulary.

    Returns ``(student, its tokenizer, teacher layer indices kept)``. ``n_layers`` 0 with a named
    selection keeps every layer (only the vocabulary changes). The teacher is not modified.
    """
    n_teacher = len(layer_list(teacher))
    if n_layers == 0 and selection in LAYER_SELECTIONS:
        n_layers = n_teacher
    indices = select_layers(n_teacher, n_layers, selection)
    student = keep_layers(teacher, indices)
    if tokenizer is None:
        return student, teacher_tokenizer, indices
    if vocab_transfer not in TRANSFER_METHODS:
        raise ValueProblem("vocab_transfer", f"expected one of {', '.join(TRANSFER_METHODS)}, "
                          f"got {vocab_transfer!r}")
    transfer_model(student, teacher_tokenizer, tokenizer, vocab_transfer, seed=seed)
    return student, tokenizer, indices


def map_layers(n_student: int, n_teacher: int, spec: str = "uniform",
               kept: Sequence[int] | None = None) -> list[tuple[int, int]]:
    """Hidden-state layer pairs ``(student, teacher)``, counted as ``hidden_states`` are (0 = embeddings).

    ``uniform``: student layer i learns teacher layer round(i * n/k) (6 -> 3: 1:2, 2:4, 3:6);
    ``kept``: each student layer learns the output of the teacher layer it was copied from (``kept``:
    the 0-based teacher layers the student kept, as :func:`select_layers` gives them; 0,2,4 -> 1:1, 2:3,
    3:5); ``last``: only the last layers; or explicit pairs ``"1:2,2:4,3:6"``.
    """
    spec = spec.strip()
    if spec == "kept":
        if kept is None:
            raise ValueProblem("hidden_layers", "'kept' pairs each student layer with the teacher layer it was "
                               "copied from, which is known only for a student cut from the teacher itself "
                               "(student_init=teacher)")
        if len(kept) != n_student or any(not 0 <= t < n_teacher for t in kept):
            raise ValueProblem("hidden_layers", f"kept layers {list(kept)} do not fit a {n_student}-layer student "
                               f"of a {n_teacher}-layer teacher")
        return [(i + 1, t + 1) for i, t in enumerate(kept)]
    if spec == "uniform":
        return [(i, round(i * n_teacher / n_student)) for i in range(1, n_student + 1)]
    if spec == "last":
        return [(n_student, n_teacher)]
    pairs = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        try:
            s, t = (int(x) for x in part.split(":"))
        except ValueError:
            raise ValueProblem("hidden_layers", f"expected uniform, kept, last or pairs like '1:2,2:4,3:6', "
                              f"got {spec!r}") from None
        if not (0 <= s <= n_student and 0 <= t <= n_teacher):
            raise ValueProblem("hidden_layers", f"pair {part!r} out of range (student 0..{n_student}, "
                              f"teacher 0..{n_teacher}; 0 is the embedding output)")
        pairs.append((s, t))
    if not pairs:
        raise ValueProblem("hidden_layers", f"no layer pair in {spec!r}")
    return pairs
