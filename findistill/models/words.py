"""Word-level reading of sub-token encoders: alignment, chunking, pooling.

NER labels live on words. A sentence is tokenised with ``is_split_into_words=True``; the label of
a word sits on its first sub-token (the other pieces get -100, ignored by the loss). Sentences
longer than ``max_length`` sub-tokens are cut into chunks *between words* (never inside a word), so
long SEC sentences lose no labels; predictions of the chunks are put back together per sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100


@dataclass
class Chunk:
    """One model input: words ``[start, end)`` of sentence ``sentence``.

    ``features`` holds ``input_ids``/``attention_mask`` (and ``labels`` when tags were given);
    ``word_index[t]`` is the word (relative to ``start``) of sub-token ``t``, -1 for special tokens;
    ``labeled_words`` are the words (absolute) that own a first sub-token, in order.
    """

    sentence: int
    start: int
    end: int
    features: dict[str, list[int]]
    word_index: list[int]
    labeled_words: list[int] = field(default_factory=list)


def word_chunks(tokens_per_word: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Split a sentence into ``[start, end)`` word ranges of at most ``budget`` sub-tokens each.

    A single word longer than the budget gets a chunk of its own (the tokenizer truncates it).
    An empty sentence gives one empty chunk so that every sentence keeps a place.
    """
    if budget < 1:
        raise ValueError(f"chunk budget must be >= 1 sub-token, got {budget}")
    chunks: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, n in enumerate(tokens_per_word):
        if used + n > budget and i > start:
            chunks.append((start, i))
            start, used = i, 0
        used += n
    chunks.append((start, len(tokens_per_word)))
    return chunks


def word_piece_counts(tokenizer: PreTrainedTokenizerBase, sentences: Sequence[Sequence[str]]) -> list[list[int]]:
    """Sub-token count of every word (without special tokens); 0 for words the tokenizer drops."""
    encoded = tokenizer([list(s) for s in sentences], is_split_into_words=True, add_special_tokens=False)
    return [_pieces_per_word(encoded.word_ids(i), len(words)) for i, words in enumerate(sentences)]


def _pieces_per_word(word_ids: Sequence[int | None], n_words: int) -> list[int]:
    """Sub-tokens of each of ``n_words`` words from an encoding's ``word_ids`` (None: a special token)."""
    counts = [0] * n_words
    for w in word_ids:
        if w is not None:
            counts[w] += 1
    return counts


def encode(
    tokenizer: PreTrainedTokenizerBase,
    sentences: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]] | None = None,
    label2id: dict[str, int] | None = None,
    max_length: int = 256,
) -> list[Chunk]:
    """Tokenise pre-split sentences into chunks of at most ``max_length`` sub-tokens (specials included).

    With ``tags`` (and ``label2id``) each chunk carries ``labels``: the word's label id on its first
    sub-token, -100 elsewhere.
    """
    if not sentences:
        return []
    if tags is not None and label2id is None:
        raise ValueError("encode: tags given without label2id")
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    # one pass over every sentence; only those longer than max_length are tokenised again, cut between words
    whole = tokenizer([list(s) for s in sentences], is_split_into_words=True, verbose=False)
    spans, sources, long_pieces = [], [], []
    for s in range(len(sentences)):
        if len(whole["input_ids"][s]) <= max_length:
            spans.append((s, 0, len(sentences[s])))
            sources.append((whole, s))
            continue
        for a, b in word_chunks(_pieces_per_word(whole.word_ids(s), len(sentences[s])), budget):
            spans.append((s, a, b))
            sources.append((None, len(long_pieces)))
            long_pieces.append(list(sentences[s][a:b]))
    if long_pieces:
        cut = tokenizer(long_pieces, is_split_into_words=True, truncation=True, max_length=max_length)
        sources = [(cut if encoded is None else encoded, j) for encoded, j in sources]
    chunks = []
    for (s, a, b), (encoded, j) in zip(spans, sources):
        word_ids = encoded.word_ids(j)
        features = {k: list(v[j]) for k, v in encoded.items()}
        labels, labeled, previous = [], [], None
        for w in word_ids:
            first = w is not None and w != previous
            if first:
                labeled.append(a + w)
            if tags is not None:
                labels.append(label2id[tags[s][a + w]] if first else IGNORE_INDEX)  # type: ignore[index]
            previous = w
        if tags is not None:
            features["labels"] = labels
        chunks.append(Chunk(s, a, b, features, [-1 if w is None else w for w in word_ids], labeled))
    return chunks


def pool_words(states: torch.Tensor, word_index: torch.Tensor, n_words: int, mode: str = "first") -> torch.Tensor:
    """Pool sub-token vectors to words.

    states: [batch, tokens, dim]; word_index: [batch, tokens] word of each token, -1 for none.
    Returns [batch, n_words, dim]: the first sub-token's vector (``first``) or the mean of the word's
    sub-tokens (``mean``); words with no sub-token are zero vectors.
    """
    if mode not in ("first", "mean"):
        raise ValueError(f"word pooling must be 'first' or 'mean', got {mode!r}")
    batch, tokens, dim = states.shape
    valid = word_index >= 0
    target = torch.where(valid, word_index, torch.full_like(word_index, n_words))  # park specials in a spare slot
    if mode == "first":
        previous = torch.cat([torch.full_like(word_index[:, :1], -2), word_index[:, :-1]], dim=1)
        keep = valid & (word_index != previous)
        target = torch.where(keep, target, torch.full_like(target, n_words))
    out = states.new_zeros(batch, n_words + 1, dim)
    out.scatter_add_(1, target.unsqueeze(-1).expand(-1, -1, dim), states)
    if mode == "mean":
        counts = states.new_zeros(batch, n_words + 1)
        counts.scatter_add_(1, target, valid.to(states.dtype))
        out = out / counts.clamp(min=1).unsqueeze(-1)
    return out[:, :n_words]


def collate_inputs(tokenizer: PreTrainedTokenizerBase, chunks: Sequence[Chunk]) -> dict[str, torch.Tensor]:
    """Pad a batch of chunks on the right: model inputs ``[batch, tokens]`` (``input_ids`` padded with the pad
    token, ``token_type_ids`` with the pad type, the rest with 0) plus ``word_index`` [batch, tokens] (-1 padding)."""
    length = max(len(c.word_index) for c in chunks)
    pad = {"input_ids": tokenizer.pad_token_id or 0, "token_type_ids": tokenizer.pad_token_type_id, "word_index": -1}
    rows = {k: [c.features[k] for c in chunks] for k in chunks[0].features if k != "labels"}
    rows["word_index"] = [c.word_index for c in chunks]
    batch = {}
    for key, values in rows.items():
        array = np.full((len(chunks), length), pad.get(key, 0), dtype=np.int64)
        for i, row in enumerate(values):
            array[i, : len(row)] = row
        batch[key] = torch.from_numpy(array)
    return batch


@dataclass
class WordOutputs:
    """A model's outputs pooled to words, one array per sentence.

    ``logits``: [n_words, n_labels]; ``hidden``: [n_layers, n_words, dim] (float16) for the
    requested hidden-state layers, or ``None``; ``present``: [n_words] bool, False for words the
    tokenizer maps to no sub-token (their rows are zeros).
    """

    logits: list[np.ndarray]
    hidden: list[np.ndarray] | None
    present: list[np.ndarray]


#: the half precisions a model may run in under autocast
HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}


@torch.inference_mode()
def word_outputs(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    sentences: Sequence[Sequence[str]],
    *,
    hidden_layers: Sequence[int] = (),
    batch_size: int = 32,
    max_length: int = 256,
    pooling: str = "first",
    device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> WordOutputs:
    """Word-level logits (and hidden states ``hidden_layers``, 0 = embeddings) of a token classifier.

    Sentences are chunked between words as in :func:`encode`, so every word is seen; chunks are
    batched by length (less padding) and put back in sentence order. ``precision`` ``bf16`` or ``fp16``
    runs the model under autocast (the outputs are stored as float32 all the same).
    """
    if model.training:  # eval() walks every module: costly on each call of a served model
        model.eval()
    n_labels = model.config.num_labels
    layers = list(hidden_layers)
    logits_out = [np.zeros((len(s), n_labels), dtype=np.float32) for s in sentences]
    present = [np.zeros(len(s), dtype=bool) for s in sentences]
    hidden_out = None
    if layers:
        dim = model.config.hidden_size
        hidden_out = [np.zeros((len(layers), len(s), dim), dtype=np.float16) for s in sentences]
    chunks = encode(tokenizer, sentences, max_length=max_length)
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i].word_index))
    for b in range(0, len(order), batch_size):
        batch_chunks = [chunks[i] for i in order[b : b + batch_size]]
        batch = collate_inputs(tokenizer, batch_chunks)
        word_index = batch.pop("word_index")
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.autocast(torch.device(device).type, dtype=HALF.get(precision), enabled=precision in HALF):
            output = model(**batch, output_hidden_states=bool(layers))
        n_words = max(max(c.end - c.start for c in batch_chunks), 1)
        words = pool_words(output.logits.float().cpu(), word_index, n_words, pooling).numpy()
        states = [pool_words(output.hidden_states[k].float().cpu(), word_index, n_words, pooling).numpy()
                  for k in layers]
        for i, c in enumerate(batch_chunks):
            local = np.array([w - c.start for w in c.labeled_words], dtype=int)
            logits_out[c.sentence][c.start + local] = words[i, local]
            present[c.sentence][c.start + local] = True
            for j, layer_states in enumerate(states):
                hidden_out[c.sentence][j, c.start + local] = layer_states[i, local]  # type: ignore[index]
    return WordOutputs(logits_out, hidden_out, present)


def predict_word_logits(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    sentences: Sequence[Sequence[str]],
    *,
    batch_size: int = 32,
    max_length: int = 256,
    pooling: str = "first",
    device: str | torch.device = "cpu",
) -> list[np.ndarray]:
    """Word-level logits of a token-classification model: one [n_words, n_labels] array per sentence.

    Words the tokenizer maps to no sub-token get all-zero logits (decoded as the first label, ``O``).
    """
    return word_outputs(model, tokenizer, sentences, batch_size=batch_size, max_length=max_length,
                        pooling=pooling, device=device).logits
