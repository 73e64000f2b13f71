"""Vocabulary transfer: a model's embedding matrix rebuilt for a new tokenizer from its old one.

Methods, selectable by name (:data:`TRANSFER_METHODS`), after Gee et al. (2022), "Fast Vocabulary Transfer
for Language Model Compression":

* ``fvt``: a new token whose string is in the old vocabulary copies that row; any other token gets
  the mean of the old rows of the pieces the old tokenizer splits its surface string into. A
  continuation piece (``##ing``) is split as the inside of a word: its first old piece is a
  continuation piece too (say ``##ancial`` -> ``##an`` ``##cial``), where a word-initial token
  starts with a word-initial piece (``ancial`` -> ``an`` ``##cial``);
* ``pvt``: exact string matches copy their row; the others are random;
* ``random``: every word row random (the weak baseline).

In all three, special tokens map by role ([CLS] -> the old cls_token, [PAD] -> pad_token, ...),
and random rows are drawn as a fresh model draws them: N(0, ``initializer_range``). A trimmed
vocabulary (a subset of the old one) copies every row exactly under ``fvt`` and ``pvt``, so the
model gives the same outputs on text the trimmed vocabulary covers.

:func:`plan_transfer` decides where each new row comes from (a :class:`TransferPlan`, plain data);
:func:`transfer_matrix` applies a plan to any ``[old_vocab, ...]`` tensor; :func:`transfer_model`
resizes a Hugging Face model to the new vocabulary (input embeddings, an untied output embedding
and its bias, ``config.vocab_size`` and special-token ids) and fills it. No MLflow here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from findistill.config import ValueProblem
from findistill.models.loading import SPECIAL_TOKEN_ATTRS

TRANSFER_METHODS = ("fvt", "pvt", "random")
_CONFIG_TOKEN_IDS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id",
                     "mask_token_id", "decoder_start_token_id")


@dataclass
class TransferPlan:
    """Where every row of the new matrix comes from.

    ``sources[i]``: old ids whose rows are averaged for new id ``i`` (one id: an exact copy; empty:
    a random row). ``kinds[i]``: ``special`` (mapped by role), ``exact`` (same string), ``fvt``
    (mean of the old pieces) or ``random``.
    """

    sources: list[list[int]]
    kinds: list[str]
    method: str

    def counts(self) -> dict[str, int]:
        """How many new rows of each kind, e.g. ``{"special": 5, "exact": 7000, "fvt": 995, "random": 0}``."""
        found = Counter(self.kinds)
        return {kind: found.get(kind, 0) for kind in ("special", "exact", "fvt", "random")}


def _wordpiece(word: str, vocab: dict[str, int], prefix: str, max_chars: int, unk_id: int,
               continuation: bool) -> list[int]:
    """Greedy longest-match-first WordPiece (as the ``tokenizers`` WordPiece model) of one
    pre-tokenised word; ``continuation``: the word continues a previous piece, so its first piece
    carries ``prefix`` too. A word with no complete split is one UNK."""
    if len(word) > max_chars:
        return [unk_id]
    ids, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            piece = word[start:end]
            if start > 0 or continuation:
                piece = prefix + piece
            if piece in vocab:
                found = vocab[piece]
                break
            end -= 1
        if found is None:
            return [unk_id]
        ids.append(found)
        start = end
    return ids


def old_pieces_splitter(old_tokenizer: PreTrainedTokenizerBase) -> Callable[[str, bool], list[int]]:
    """``split(surface, continuation) -> old ids``: how the old tokenizer splits a string.

    For a WordPiece old tokenizer the string goes through its normaliser and pre-tokeniser, then
    greedy WordPiece, the first piece as a continuation when ``continuation``. Any other tokenizer
    splits the string as a text of its own (``continuation`` cannot be honoured and is ignored).
    """
    backend = old_tokenizer.backend_tokenizer
    model = json.loads(backend.to_str())["model"]
    if model.get("type") != "WordPiece":
        def split_any(surface: str, continuation: bool) -> list[int]:
            return list(old_tokenizer(surface, add_special_tokens=False)["input_ids"])
        return split_any
    vocab = old_tokenizer.get_vocab()
    prefix = model.get("continuing_subword_prefix") or "##"
    max_chars = int(model.get("max_input_chars_per_word") or 100)
    unk_id = vocab[model["unk_token"]]
    normalizer, pre_tokenizer = backend.normalizer, backend.pre_tokenizer

    def split_wordpiece(surface: str, continuation: bool) -> list[int]:
        text = normalizer.normalize_str(surface) if normalizer is not None else surface
        words = [w for w, _ in pre_tokenizer.pre_tokenize_str(text)] if pre_tokenizer is not None else text.split()
        ids: list[int] = []
        for k, word in enumerate(words):
            ids += _wordpiece(word, vocab, prefix, max_chars, unk_id, continuation and k == 0)
        return ids

    return split_wordpiece


def _continuation_prefix(tokenizer: PreTrainedTokenizerBase) -> str | None:
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    return model.get("continuing_subword_prefix")


def plan_transfer(old_tokenizer: PreTrainedTokenizerBase, new_tokenizer: PreTrainedTokenizerBase,
                  method: str = "fvt") -> TransferPlan:
    """Decide, for every id of ``new_tokenizer`` (``len(new_tokenizer)`` ids), which old rows build it.

    Special tokens map by role first (the new ``cls_token`` takes the old ``cls_token``'s row...);
    another special token copies the same string's old row, else is random. Then by ``method``:
    ``fvt`` exact copy or the mean of the old pieces (see the module doc), ``pvt`` exact copy or
    random, ``random`` random.
    """
    if method not in TRANSFER_METHODS:
        raise ValueProblem("method", f"expected one of {', '.join(TRANSFER_METHODS)}, got {method!r}")
    new_vocab = new_tokenizer.get_vocab()
    old_vocab = old_tokenizer.get_vocab()
    size = len(new_tokenizer)
    if sorted(new_vocab.values()) != list(range(size)):
        raise ValueError(f"the new tokenizer's ids are not 0..{size - 1} without gaps")
    by_role: dict[int, int] = {}
    for attr in SPECIAL_TOKEN_ATTRS:
        new_token, old_token = getattr(new_tokenizer, attr, None), getattr(old_tokenizer, attr, None)
        if new_token in new_vocab and old_token in old_vocab:
            by_role.setdefault(new_vocab[new_token], old_vocab[old_token])
    new_specials = set(new_tokenizer.all_special_tokens)
    prefix = _continuation_prefix(new_tokenizer)
    split = old_pieces_splitter(old_tokenizer) if method == "fvt" else None
    sources: list[list[int]] = []
    kinds: list[str] = []
    for token, new_id in sorted(new_vocab.items(), key=lambda item: item[1]):
        if new_id in by_role:
            sources.append([by_role[new_id]])
            kinds.append("special")
        elif token in new_specials:
            sources.append([old_vocab[token]] if token in old_vocab else [])
            kinds.append("special" if token in old_vocab else "random")
        elif method != "random" and token in old_vocab:
            sources.append([old_vocab[token]])
            kinds.append("exact")
        elif method == "fvt":
            continuation = bool(prefix) and token.startswith(prefix) and len(token) > len(prefix)
            ids = split(token[len(prefix):] if continuation else token, continuation)
            sources.append(ids)
            kinds.append("fvt" if ids else "random")
        else:
            sources.append([])
            kinds.append("random")
    return TransferPlan(sources=sources, kinds=kinds, method=method)


def transfer_matrix(old: torch.Tensor, plan: TransferPlan, *, std: float = 0.02,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """The new matrix ``[len(plan.sources), *old.shape[1:]]`` from ``old`` ``[old_vocab, ...]``.

    Row ``i`` is the mean of ``old[plan.sources[i]]`` (computed in float32; a single source is an
    exact copy), or N(0, ``std``) when the plan gives no source (``std=0``: zeros, e.g. for a bias).
    """
    size = len(plan.sources)
    flat = old.detach().reshape(old.shape[0], -1).float()
    rows = torch.tensor([i for i, ids in enumerate(plan.sources) for _ in ids], dtype=torch.long)
    cols = torch.tensor([j for ids in plan.sources for j in ids], dtype=torch.long)
    if len(cols) and int(cols.max()) >= old.shape[0]:
        raise ValueError(f"the plan reads old row {int(cols.max())} but the old matrix has {old.shape[0]} rows")
    sums = torch.zeros(size, flat.shape[1]).index_add_(0, rows, flat[cols])
    counts = torch.bincount(rows, minlength=size).float().unsqueeze(1)
    new = sums / counts.clamp(min=1)
    empty = counts.squeeze(1) == 0
    if bool(empty.any()):
        noise = torch.randn(int(empty.sum()), flat.shape[1], generator=generator) * std
        new[empty] = noise
    return new.to(old.dtype).reshape(size, *old.shape[1:])


def transfer_model(model: PreTrainedModel, old_tokenizer: PreTrainedTokenizerBase,
                   new_tokenizer: PreTrainedTokenizerBase, method: str = "fvt", *, seed: int = 0,
                   init_std: float | None = None, plan: TransferPlan | None = None) -> PreTrainedModel:
    """Give ``model`` (whose vocabulary is ``old_tokenizer``'s) the vocabulary of ``new_tokenizer``, in place.

    Resizes the word embeddings to ``len(new_tokenizer)`` and fills them by ``method`` (or by a
    ready ``plan``); an output embedding tied to the input stays tied, an untied one and its bias
    are transferred by the same plan (random bias rows: 0). Updates ``config.vocab_size``, the
    special-token ids in the config and the embedding's ``padding_idx``. Random rows:
    N(0, ``init_std``), default ``config.initializer_range`` (0.02), seeded by ``seed``.
    Returns the model, ready for ``save_pretrained`` next to ``new_tokenizer``.
    """
    plan = plan or plan_transfer(old_tokenizer, new_tokenizer, method)
    inputs = model.get_input_embeddings()
    if inputs.weight.shape[0] < len(old_tokenizer):
        raise ValueError(f"the model has {inputs.weight.shape[0]} embedding rows, fewer than the old tokenizer's "
                         f"{len(old_tokenizer)} tokens: is old_tokenizer the model's own?")
    std = float(init_std if init_std is not None else getattr(model.config, "initializer_range", 0.02))
    generator = torch.Generator().manual_seed(seed)
    old_inputs = inputs.weight.detach().clone()
    outputs = model.get_output_embeddings()
    tied = outputs is not None and outputs.weight is inputs.weight
    old_outputs = outputs.weight.detach().clone() if outputs is not None and not tied else None
    old_bias = outputs.bias.detach().clone() if outputs is not None and getattr(outputs, "bias", None) is not None \
        else None
    size = len(plan.sources)
    model.resize_token_embeddings(size, mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight.copy_(transfer_matrix(old_inputs, plan, std=std, generator=generator))
        new_outputs = model.get_output_embeddings()
        if old_outputs is not None:
            new_outputs.weight.copy_(transfer_matrix(old_outputs, plan, std=std, generator=generator))
        if old_bias is not None and new_outputs.bias is not None:
            new_outputs.bias.copy_(transfer_matrix(old_bias, plan, std=0.0))
    _remap_config_ids(model, old_tokenizer, new_tokenizer)
    model.config.vocab_size = size
    text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    text_config.vocab_size = size
    return model


def _remap_config_ids(model: PreTrainedModel, old_tokenizer: PreTrainedTokenizerBase,
                      new_tokenizer: PreTrainedTokenizerBase) -> None:
    """Point the config's special-token ids (and the embedding's padding_idx) at the same tokens in the new
    vocabulary."""
    new_vocab = new_tokenizer.get_vocab()
    old_pad = model.config.pad_token_id
    for attr in _CONFIG_TOKEN_IDS:
        old_id = getattr(model.config, attr, None)
        if not isinstance(old_id, int):
            continue
        token = old_tokenizer.convert_ids_to_tokens(old_id)
        setattr(model.config, attr, new_vocab.get(token))
    embedding = model.get_input_embeddings()
    if getattr(embedding, "padding_idx", None) is not None:
        new_pad = model.config.pad_token_id if old_pad is not None else new_tokenizer.pad_token_id
        embedding.padding_idx = new_pad
