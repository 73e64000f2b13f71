"""Domain adaptation of encoders: masked-LM continued pre-training and general distillation.

- **DAPT** (Gururangan et al. 2020): continue the masked-LM objective on domain text. Masking is
  by whole words (all sub-tokens of a chosen word are masked together), so a model cannot guess
  ``##daq`` from ``nas ##da`` and has to learn the word from its context. Words are found by
  transformers' own whole-word collator from the character offsets of the pieces.
- **Pseudo-perplexity** (Salazar et al. 2020, with the word-aware "l2r" variant of Kauf & Ivanova
  2023): each sub-token is masked in turn together with the later pieces of its word, and scored.
  Summed per word it gives a per-word pseudo-perplexity comparable across tokenizers (a domain
  vocabulary has fewer, longer pieces, so per-token numbers are not).
- **General distillation** (the first "distill" of Distill-Adapt-Distill, Gordon & Duh 2020): the
  student learns the teacher's hidden states, pooled to words so that the two may tokenise
  differently, on general text (:func:`findistill.training.distill.distillation_losses` with only the
  hidden-state term).

Both trainings evaluate their own objective on held-out text after every epoch (the masked-LM loss
on masks drawn once, or the hidden-state loss), stop early when it has not improved for
``patience`` epochs, and end with the best epoch's weights.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import (
    DataCollatorForLanguageModeling,
    DataCollatorForTokenClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    set_seed,
)

from findistill.models.words import word_chunks, word_piece_counts
from findistill.training.distill import (
    MODEL_INPUTS,
    DistillCollator,
    DistillTrainer,
    LossSettings,
    attach_projections,
    build_examples,
    detach_projections,
)
from findistill.training.trainer import TrainSettings, WordLevelTrainer, fit, trainer_callbacks, training_arguments

MLM_PROBABILITY = 0.15


def mlm_examples(tokenizer: PreTrainedTokenizerBase, sentences: Sequence[Sequence[str]],
                 max_length: int) -> list[dict[str, list]]:
    """Masked-LM inputs of word-split sentences: each sentence cut between words into chunks of at most
    ``max_length`` sub-tokens (special tokens included), with the pieces' offsets inside their words
    and the special-token mask (what whole-word masking needs)."""
    budget = max_length - tokenizer.num_special_tokens_to_add()
    pieces: list[list[str]] = []
    for words, counts in zip(sentences, word_piece_counts(tokenizer, sentences)):
        pieces += [list(words[a:b]) for a, b in word_chunks(counts, budget) if b > a]
    if not pieces:
        return []
    encoded = tokenizer(pieces, is_split_into_words=True, truncation=True, max_length=max_length,
                        return_offsets_mapping=True, return_special_tokens_mask=True)
    keys = [k for k in (*MODEL_INPUTS, "special_tokens_mask", "offset_mapping") if k in encoded]
    return [{k: list(encoded[k][i]) for k in keys} for i in range(len(pieces))]


class WholeWordMaskCollator(DataCollatorForLanguageModeling):
    """transformers' masked-LM collator with ``whole_word_mask=True``, for examples of :func:`mlm_examples`.

    The stock collator finds words from ``offset_mapping`` but cannot pad it; this pads the offsets
    itself and hands the rest over. As in transformers, whole-word masking replaces every chosen
    piece by the mask token (no random-token replacement). Examples that already carry ``labels``
    (masked once by :func:`mask_once`) are only padded.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, mlm_probability: float = MLM_PROBABILITY,
                 seed: int | None = None):
        super().__init__(tokenizer=tokenizer, mlm=True, mlm_probability=mlm_probability, whole_word_mask=True,
                         mask_replace_prob=1.0, random_replace_prob=0.0, seed=seed)
        self.padder = DataCollatorForTokenClassification(tokenizer)  # labels padded with -100

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        if "labels" in examples[0]:
            return self.padder(examples)
        if self.seed is not None and self.generator is None:
            self.create_rng()
        width = max(len(e["input_ids"]) for e in examples)
        offsets = torch.zeros(len(examples), width, 2, dtype=torch.long)
        for i, e in enumerate(examples):
            offsets[i, : len(e["offset_mapping"])] = torch.tensor(e["offset_mapping"], dtype=torch.long)
        rest = [{k: v for k, v in e.items() if k != "offset_mapping"} for e in examples]
        batch = dict(self.tokenizer.pad(rest, return_tensors="pt"))  # pads special_tokens_mask with 1
        special = batch.pop("special_tokens_mask")
        batch["input_ids"], batch["labels"] = self.torch_mask_tokens(
            batch["input_ids"], special_tokens_mask=special, offset_mapping=offsets)
        return batch


def mask_once(tokenizer: PreTrainedTokenizerBase, examples: Sequence[dict[str, list]], mlm_probability: float,
              seed: int) -> list[dict[str, list]]:
    """``examples`` of :func:`mlm_examples` with whole-word masks drawn from ``seed``, as fixed model inputs
    (masked ``input_ids`` and ``labels``: the original id at a masked piece, -100 elsewhere).

    Each example is masked on its own, so its masks depend on ``seed`` and on the examples before it,
    never on batching: every evaluation of the same held-out text scores the same masked pieces.
    """
    collator = WholeWordMaskCollator(tokenizer, mlm_probability, seed=seed)
    masked = []
    for example in examples:
        batch = collator([example])
        masked.append({k: v[0].tolist() for k, v in batch.items()})
    return masked


def _l2r_rows(input_ids: list[int], word_ids: list[int | None], mask_id: int) -> list[tuple[list[int], int, int]]:
    """One masked copy per scored piece: ``(masked ids, position, original id)``. Piece ``i`` of a word is
    masked with the later pieces of the same word (they would give it away); earlier ones stay visible."""
    rows = []
    for i, word in enumerate(word_ids):
        if word is None:
            continue
        masked = list(input_ids)
        j = i
        while j < len(word_ids) and word_ids[j] == word:
            masked[j] = mask_id
            j += 1
        rows.append((masked, i, input_ids[i]))
    return rows


def _lm_head(model: PreTrainedModel) -> torch.nn.Module | None:
    """The module mapping final hidden states to vocabulary logits (BERT ``cls``, RoBERTa ``lm_head``),
    when the model has one such module."""
    for name in ("cls", "lm_head"):
        if isinstance(getattr(model, name, None), torch.nn.Module):
            return getattr(model, name)
    return None


@torch.inference_mode()
def pseudo_perplexity(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, sentences: Sequence[Sequence[str]],
                      *, max_length: int = 128, batch_size: int = 64,
                      device: str | torch.device = "cpu") -> dict[str, float]:
    """Pseudo-log-likelihood of ``sentences`` under a masked LM (word-l2r masking, see the module doc).

    Returns ``pppl_word`` = exp(-PLL / words), ``pppl_token`` = exp(-PLL / sub-tokens), the PLL and
    the counts. Sentences are truncated to ``max_length`` sub-tokens; only the words kept count.
    """
    if tokenizer.mask_token_id is None:
        raise ValueError("pseudo-perplexity needs a tokenizer with a mask token")
    model.eval().to(device)
    rows: list[tuple[list[int], int, int]] = []
    words_seen = 0
    for words in sentences:
        if not words:
            continue
        encoded = tokenizer(list(words), is_split_into_words=True, truncation=True, max_length=max_length)
        word_ids = encoded.word_ids()
        rows += _l2r_rows(encoded["input_ids"], word_ids, tokenizer.mask_token_id)
        words_seen += len({w for w in word_ids if w is not None})
    rows.sort(key=lambda r: len(r[0]))  # less padding
    total = 0.0
    for b in range(0, len(rows), batch_size):
        chunk = rows[b : b + batch_size]
        width = max(len(ids) for ids, _, _ in chunk)
        ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros_like(ids)
        for i, (row, _, _) in enumerate(chunk):
            ids[i, : len(row)] = torch.tensor(row)
            attention[i, : len(row)] = 1
        rows_at = torch.arange(len(chunk), device=device)
        positions = torch.tensor([pos for _, pos, _ in chunk], device=device)
        originals = torch.tensor([original for _, _, original in chunk], device=device)
        inputs = {"input_ids": ids.to(device), "attention_mask": attention.to(device)}
        head = _lm_head(model)
        if head is not None:  # the vocabulary projection only where it is scored, not at every position
            states = model.base_model(**inputs).last_hidden_state[rows_at, positions]
            logits = head(states.unsqueeze(1))[:, 0]
        else:
            logits = model(**inputs).logits[rows_at, positions]
        total += float(logits.float().log_softmax(-1)[rows_at, originals].sum())
    return {
        "pppl_word": math.exp(-total / max(words_seen, 1)),
        "pppl_token": math.exp(-total / max(len(rows), 1)),
        "pll": total,
        "words": float(words_seen),
        "tokens": float(len(rows)),
    }


@torch.inference_mode()
def heldout_mlm_loss(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, sentences: Sequence[Sequence[str]],
                     *, max_length: int = 128, batch_size: int = 32, mlm_probability: float = MLM_PROBABILITY,
                     seed: int = 0, device: str | torch.device = "cpu") -> float:
    """Mean masked-LM loss per masked piece over ``sentences``, with whole-word masks drawn from ``seed``
    (:func:`mask_once`: the same masks for the same text, tokenizer and seed, so before/after numbers
    compare; another seed draws other masks)."""
    examples = mask_once(tokenizer, mlm_examples(tokenizer, sentences, max_length), mlm_probability, seed)
    collator = WholeWordMaskCollator(tokenizer, mlm_probability)
    model.eval().to(device)
    total, count = 0.0, 0
    for b in range(0, len(examples), batch_size):
        batch = collator(examples[b : b + batch_size])
        n = int((batch["labels"] != -100).sum())
        if n == 0:
            continue
        out = model(**{k: v.to(device) for k, v in batch.items()})
        total += float(out.loss) * n
        count += n
    return total / count if count else float("nan")


def _arguments(settings: TrainSettings, output_dir: str | Path, *, evaluate: bool, device: str | torch.device,
               progress: bool):
    """With held-out text: per-epoch held-out loss (``eval_loss``), the best epoch by it restored at
    the end. Without: the epochs run in full, the last checkpoint kept for resuming."""
    common: dict[str, Any] = {"device": device, "progress": progress, "remove_unused_columns": False,
                              "prediction_loss_only": True}
    if evaluate:
        return training_arguments(settings, output_dir, metric_for_best_model="loss", greater_is_better=False,
                                  **common)
    return training_arguments(settings, output_dir, eval_strategy="no", load_best_model_at_end=False,
                              metric_for_best_model=None, save_total_limit=1, **common)


def _summary(fitted: dict[str, Any]) -> dict[str, Any]:
    keys = ("epochs_run", "resumed_from", "train_seconds", "best_epoch", "best_val_loss")
    return {k: fitted[k] for k in keys if k in fitted}


def _heldout_loss(trainer: Trainer) -> float:
    """The trainer's loss on its evaluation set (what it logs as ``eval_loss`` each epoch), not logged."""
    output = trainer.evaluation_loop(trainer.get_eval_dataloader(), "held-out", prediction_loss_only=True)
    return float(output.metrics["eval_loss"])


def train_mlm(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, train: Sequence[Sequence[str]],
              heldout: Sequence[Sequence[str]], settings: TrainSettings, output_dir: str | Path, *,
              mlm_probability: float = MLM_PROBABILITY, device: str | torch.device = "cpu",
              on_epoch: Callable[[dict[str, float], int], None] | None = None,
              resume: bool = True, progress: bool = True) -> dict[str, Any]:
    """Continue masked-LM pre-training of ``model`` on word-split ``train`` sentences (whole-word masks),
    on ``device``.

    After each epoch the masked-LM loss on ``heldout`` (masks drawn once from ``settings.seed``, the same
    every epoch) is the ``val_loss`` logged through ``on_epoch`` with ``train_loss``; training stops when
    it has not improved for ``settings.patience`` epochs, and the best epoch's weights are restored. With
    no held-out text every epoch runs. An interrupted run resumes from the last checkpoint in
    ``output_dir``. Returns ``epochs_run``, ``resumed_from``, ``train_seconds``, ``train_examples`` and,
    with held-out text, ``best_epoch`` and ``best_val_loss``.
    """
    set_seed(settings.seed)
    examples = mlm_examples(tokenizer, train, settings.max_length)
    if not examples:
        raise ValueError("masked-LM training got no text (every sentence was empty)")
    held = mask_once(tokenizer, mlm_examples(tokenizer, heldout, settings.max_length), mlm_probability,
                     settings.seed)
    trainer = WordLevelTrainer(
        model=model,
        args=_arguments(settings, output_dir, evaluate=bool(held), device=device, progress=progress),
        train_dataset=examples,
        eval_dataset=held or None,
        data_collator=WholeWordMaskCollator(tokenizer, mlm_probability, seed=settings.seed),
        processing_class=tokenizer,
        callbacks=trainer_callbacks(settings, on_epoch, eval_key="eval_loss" if held else None),
    )
    return {**_summary(fit(trainer, output_dir, resume=resume)), "train_examples": len(examples)}


def warm_up_head(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, sentences: Sequence[Sequence[str]],
                 settings: TrainSettings, output_dir: str | Path, *, mlm_probability: float = MLM_PROBABILITY,
                 device: str | torch.device = "cpu", progress: bool = True) -> dict[str, Any]:
    """One epoch of masked-LM training on ``sentences`` that moves only the LM head's own weights (its
    transform and output bias; a decoder tied to the input embeddings stays as it is), the encoder frozen.

    A sentence encoder has no masked-LM head: a freshly initialised one makes the held-out loss and
    pseudo-perplexity *before* adaptation meaningless. After this warm-up they measure the encoder as it
    is, so before/after compare adaptation alone. Resumes from ``output_dir`` like :func:`train_mlm`."""
    head = _lm_head(model)
    if head is None:
        raise ValueError(f"{type(model).__name__} has no masked-LM head (cls or lm_head) to warm up")
    frozen = {id(p) for p in model.get_input_embeddings().parameters()}
    trainable = {id(p) for p in head.parameters()} - frozen
    before = {name: p.requires_grad for name, p in model.named_parameters()}
    try:
        for p in model.parameters():
            p.requires_grad_(id(p) in trainable)
        one_epoch = dataclasses.replace(settings, epochs=1)
        return train_mlm(model, tokenizer, sentences, [], one_epoch, output_dir, mlm_probability=mlm_probability,
                         device=device, progress=progress)
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(before[name])


def general_distill(student: PreTrainedModel, student_tokenizer: PreTrainedTokenizerBase, teacher: PreTrainedModel,
                    teacher_tokenizer: PreTrainedTokenizerBase, sentences: Sequence[Sequence[str]],
                    settings: TrainSettings, losses: LossSettings, output_dir: str | Path, *,
                    heldout: Sequence[Sequence[str]] = (), device: str | torch.device = "cpu",
                    on_epoch: Callable[[dict[str, float], int], None] | None = None,
                    resume: bool = True, progress: bool = True) -> dict[str, Any]:
    """Train ``student``'s encoder on ``device`` to reproduce ``teacher``'s hidden states on ``sentences``,
    word against word (``losses.layer_map`` pairs, ``losses.hidden_loss``); the tokenizers may differ.

    Only the encoders run (no language-model or NER head); the teacher runs on the fly without
    gradients. A projection is learned (and dropped afterwards) when the widths differ.

    The held-out criterion is the same hidden-state loss on ``heldout``: logged as ``val_loss`` each
    epoch, it stops training after ``settings.patience`` epochs without improvement and picks the
    epoch whose weights are restored. The summary (``epochs_run``, ``resumed_from``, ``train_seconds``,
    ``train_examples``) then also has ``best_epoch``, ``best_val_loss`` and ``heldout_hidden_loss_before``
    / ``_after``: the loss before training (through the untrained projection when the widths differ)
    and with the restored weights.
    """
    if losses.hidden_weight <= 0 or losses.kd_weight or losses.ce_weight or losses.attention_weight:
        raise ValueError("general distillation uses the hidden-state loss only (hidden_weight > 0, others 0)")
    set_seed(settings.seed)
    encoder, teacher_encoder = student.base_model, teacher.base_model
    teacher_encoder.to(device).eval()
    attach_projections(encoder, teacher.config.hidden_size, len(losses.layer_map), settings.seed)

    def examples_of(text: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
        return build_examples(student_tokenizer, [list(w) for w in text], None, {}, settings.max_length,
                              teacher_tokenizer=teacher_tokenizer, teacher_max_length=settings.max_length)

    examples, held = examples_of(sentences), examples_of(heldout)
    if not examples:
        raise ValueError("general distillation got no text (every sentence was empty)")
    trainer = DistillTrainer(
        model=encoder,
        args=_arguments(settings, output_dir, evaluate=bool(held), device=device, progress=progress),
        train_dataset=examples,
        eval_dataset=held or None,
        data_collator=DistillCollator(student_tokenizer, teacher_tokenizer),
        processing_class=student_tokenizer,
        callbacks=trainer_callbacks(settings, on_epoch, eval_key="eval_loss" if held else None),
        teacher=teacher_encoder,
        loss_settings=losses,
    )
    before = _heldout_loss(trainer) if held else None
    summary = _summary(fit(trainer, output_dir, resume=resume))
    if held:
        summary.update(heldout_hidden_loss_before=before, heldout_hidden_loss_after=_heldout_loss(trainer))
    detach_projections(encoder)
    return {**summary, "train_examples": len(examples)}
