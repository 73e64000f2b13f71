"""Knowledge distillation for word-level NER, with the same or a different tokenizer on each side.

NER labels live on words, and any two tokenizers agree on the words of a pre-split sentence. Each
side's sub-token outputs are pooled to words (:func:`findistill.models.words.pool_words`, first sub-token or
mean) and the student learns word against word:

- ``kd``: KL(softmax(z_t/T) || softmax(z_s/T)) * T^2 over words both sides see;
- ``ce``: cross-entropy with the gold label on the word's first sub-token (what inference reads);
- ``hidden``: MSE or cosine distance between word-pooled hidden states of mapped layers, through a
  learned linear projection when the widths differ;
- ``attention``: KL between attention distributions of mapped layers, only when both sides see the
  very same sub-tokens (same tokenizer).

A word that one side truncates or maps to no sub-token does not count. The teacher runs in eval
mode without gradients; by default its word-level outputs are computed once before training
(``cache_teacher``), so an epoch costs little more than an epoch of plain fine-tuning. Text without
gold labels (the *transfer set*: another corpus, raw domain text, or training sentences with their
entity mentions swapped) adds teacher soft labels beyond the labelled set.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import (
    DataCollatorForTokenClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    set_seed,
)

from findistill.config import ValueProblem
from findistill.data.corpus import Sentence
from findistill.models.words import IGNORE_INDEX, WordOutputs, encode, pool_words, word_outputs
from findistill.training.distributed import main_process_first, resolve_precision, weights_digest
from findistill.training.kd_losses import (
    POOLINGS,
    attention_loss,
    hidden_state_loss,
    kd_loss,
    word_ce_loss,
    words_present,
)
from findistill.training.qat import QuantScheme, attach_fake_quant, detach_fake_quant
from findistill.training.trainer import (
    TrainSettings,
    WordLevelTrainer,
    argmax_logits,
    encode_split,
    fit,
    metrics_fn,
    trainer_callbacks,
    training_arguments,
)

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: attribute of the student holding the hidden-state projections during training (removed before saving)
PROJECTIONS = "findistill_projections"


@dataclass
class LossSettings:
    """Weights and settings of the distillation objective (the ``distill`` stage's parameters)."""

    temperature: float = 2.0
    kd_weight: float = 1.0
    ce_weight: float = 1.0
    hidden_weight: float = 0.0
    hidden_loss: str = "mse"
    attention_weight: float = 0.0
    word_pooling: str = "first"
    layer_map: list[tuple[int, int]] = field(default_factory=list)

    def weights(self) -> dict[str, float]:
        return {"kd": self.kd_weight, "ce": self.ce_weight, "hidden": self.hidden_weight,
                "attention": self.attention_weight}


def _teacher_word_targets(teacher: PreTrainedModel, inputs: dict[str, torch.Tensor], settings: LossSettings,
                          n_words: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, Any]:
    """Teacher word logits, word mask, word hidden states [b, pairs, w, d] and raw attentions, from
    cached outputs in the batch or by running the teacher (no gradients) on its own sub-tokens."""
    if "t_logits" in inputs:
        return inputs["t_logits"], inputs["t_present"], inputs.get("t_hidden"), None
    need_hidden, need_attention = settings.hidden_weight > 0, settings.attention_weight > 0
    with torch.no_grad():
        out = teacher(**{k: inputs[f"t_{k}"] for k in MODEL_INPUTS if f"t_{k}" in inputs},
                      output_hidden_states=need_hidden, output_attentions=need_attention)
    index = inputs["t_word_index"]
    logits = pool_words(out.logits.float(), index, n_words, settings.word_pooling) if settings.kd_weight > 0 else None
    hidden = None
    if need_hidden:
        hidden = torch.stack([pool_words(out.hidden_states[t].float(), index, n_words, settings.word_pooling)
                              for _, t in settings.layer_map], dim=1)
    return logits, words_present(index, n_words), hidden, out.attentions


def distillation_losses(student: PreTrainedModel, inputs: dict[str, torch.Tensor], settings: LossSettings,
                        teacher: PreTrainedModel | None = None) -> dict[str, torch.Tensor]:
    """The loss components with a non-zero weight, for one batch of :class:`DistillCollator`.

    The batch carries the student's sub-tokens (``input_ids``... ``word_index``), ``word_labels``
    [b, w] (-100: no gold label) and either the teacher's cached word outputs (``t_logits``,
    ``t_present``, ``t_hidden``) or its sub-tokens (``t_input_ids``... ``t_word_index``). With the kd
    and ce weights at 0 neither model's ``logits`` are used (plain encoders will do: general distillation).
    """
    weights = settings.weights()
    need_hidden, need_attention = weights["hidden"] > 0, weights["attention"] > 0
    word_index, labels = inputs["word_index"], inputs["word_labels"]
    n_words = labels.shape[1]
    out = student(**{k: inputs[k] for k in MODEL_INPUTS if k in inputs},
                  output_hidden_states=need_hidden, output_attentions=need_attention)
    s_present = words_present(word_index, n_words)
    first_logits = pool_words(out.logits, word_index, n_words, "first") if weights["kd"] + weights["ce"] > 0 else None
    if "t_logits" not in inputs and teacher is None:
        raise ValueError("distillation_losses: the batch has no cached teacher outputs and no teacher was given")
    t_logits, t_present, t_hidden, t_attentions = _teacher_word_targets(teacher, inputs, settings, n_words)
    both = s_present & t_present.bool()
    parts: dict[str, torch.Tensor] = {}
    if weights["kd"] > 0:
        s_logits = first_logits if settings.word_pooling == "first" else \
            pool_words(out.logits, word_index, n_words, settings.word_pooling)
        parts["kd"] = kd_loss(s_logits, t_logits, both, settings.temperature)
    if weights["ce"] > 0:
        parts["ce"] = word_ce_loss(first_logits, torch.where(s_present, labels, torch.full_like(labels, IGNORE_INDEX)))
    if need_hidden:
        projections = getattr(student, PROJECTIONS, None)
        losses = []
        for j, (s_layer, _) in enumerate(settings.layer_map):
            s_words = pool_words(out.hidden_states[s_layer], word_index, n_words, settings.word_pooling)
            projection = projections[j] if projections is not None else None
            losses.append(hidden_state_loss(s_words[both], t_hidden[:, j][both], settings.hidden_loss, projection))
        parts["hidden"] = torch.stack(losses).mean()
    if need_attention:
        if t_attentions is None:
            raise ValueError("the attention loss needs the teacher run on the fly (cache_teacher=false)")
        if inputs["t_input_ids"].shape != inputs["input_ids"].shape or \
                not torch.equal(inputs["t_input_ids"], inputs["input_ids"]):
            raise ValueProblem("attention_weight", "the attention loss needs both models to see the same "
                              "sub-tokens (the same tokenizer); set attention_weight=0 with a domain tokenizer")
        losses = [attention_loss(out.attentions[s - 1], t_attentions[t - 1], inputs["attention_mask"])
                  for s, t in settings.layer_map if s >= 1 and t >= 1]
        parts["attention"] = torch.stack(losses).mean()
    return parts


def build_examples(
    student_tokenizer: PreTrainedTokenizerBase,
    sentences: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]] | None,
    label2id: dict[str, int],
    max_length: int,
    *,
    targets: WordOutputs | None = None,
    teacher_tokenizer: PreTrainedTokenizerBase | None = None,
    teacher_max_length: int = 512,
) -> list[dict[str, Any]]:
    """Training examples: the student's chunks of ``sentences`` with word labels and the teacher side.

    ``tags`` None: no gold labels (a transfer set). The teacher side is either ``targets`` (cached
    word outputs of whole sentences, sliced per chunk) or, with ``teacher_tokenizer``, the teacher's
    sub-tokens of the chunk's words (cut at ``teacher_max_length``: words past it do not count).
    """
    if (targets is None) == (teacher_tokenizer is None):
        raise ValueError("build_examples: give exactly one of targets (cached) or teacher_tokenizer (on the fly)")
    chunks = encode(student_tokenizer, sentences, max_length=max_length)
    examples = []
    for c in chunks:
        example: dict[str, Any] = {k: v for k, v in c.features.items() if k in MODEL_INPUTS}
        example["word_index"] = c.word_index
        labels = [IGNORE_INDEX] * (c.end - c.start)
        if tags is not None:
            for w in c.labeled_words:
                labels[w - c.start] = label2id[tags[c.sentence][w]]
        example["word_labels"] = labels
        if targets is not None:
            example["t_logits"] = targets.logits[c.sentence][c.start:c.end]
            example["t_present"] = targets.present[c.sentence][c.start:c.end]
            if targets.hidden is not None:
                example["t_hidden"] = targets.hidden[c.sentence][:, c.start:c.end]
        examples.append(example)
    if teacher_tokenizer is not None:
        pieces = [list(sentences[c.sentence][c.start:c.end]) for c in chunks]
        encoded = teacher_tokenizer(pieces, is_split_into_words=True, truncation=True, max_length=teacher_max_length)
        for j, example in enumerate(examples):
            for k in MODEL_INPUTS:
                if k in encoded:
                    example[f"t_{k}"] = list(encoded[k][j])
            example["t_word_index"] = [-1 if w is None else w for w in encoded.word_ids(j)]
    return examples


def _pad(rows: Sequence[Any], width: int, fill: float, dtype: torch.dtype) -> torch.Tensor:
    out = torch.full((len(rows), width), fill, dtype=dtype)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(np.array(row), dtype=dtype)
    return out


class DistillCollator:
    """Pads distillation examples (:func:`build_examples`); plain labelled chunks (evaluation) go to
    the usual token-classification collator."""

    def __init__(self, student_tokenizer: PreTrainedTokenizerBase, teacher_tokenizer: PreTrainedTokenizerBase):
        self.student_tokenizer = student_tokenizer
        self.teacher_tokenizer = teacher_tokenizer
        self.token_collator = DataCollatorForTokenClassification(student_tokenizer)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if "word_labels" not in features[0]:
            return self.token_collator(features)
        batch = dict(self.student_tokenizer.pad([{k: f[k] for k in MODEL_INPUTS if k in f} for f in features],
                                                return_tensors="pt"))
        tokens = batch["input_ids"].shape[1]
        n_words = max(max(len(f["word_labels"]) for f in features), 1)
        batch["word_index"] = _pad([f["word_index"] for f in features], tokens, -1, torch.long)
        batch["word_labels"] = _pad([f["word_labels"] for f in features], n_words, IGNORE_INDEX, torch.long)
        if "t_logits" in features[0]:
            n_labels = features[0]["t_logits"].shape[-1]
            logits = torch.zeros(len(features), n_words, n_labels)
            for i, f in enumerate(features):
                logits[i, : len(f["t_logits"])] = torch.from_numpy(np.array(f["t_logits"], dtype=np.float32))
            batch["t_logits"] = logits
            batch["t_present"] = _pad([f["t_present"] for f in features], n_words, False, torch.bool)
            if "t_hidden" in features[0]:
                layers, _, dim = features[0]["t_hidden"].shape
                hidden = torch.zeros(len(features), layers, n_words, dim)
                for i, f in enumerate(features):
                    hidden[i, :, : f["t_hidden"].shape[1]] = torch.from_numpy(f["t_hidden"].astype(np.float32))
                batch["t_hidden"] = hidden
        else:
            teacher = self.teacher_tokenizer.pad(
                [{k: f[f"t_{k}"] for k in MODEL_INPUTS if f"t_{k}" in f} for f in features], return_tensors="pt")
            batch.update({f"t_{k}": v for k, v in teacher.items()})
            batch["t_word_index"] = _pad([f["t_word_index"] for f in features], teacher["input_ids"].shape[1], -1,
                                         torch.long)
        return batch


class DistillTrainer(WordLevelTrainer):
    """Trainer whose training loss is the weighted sum of :func:`distillation_losses`. Evaluation batches
    of plain labelled chunks give the usual entity F1 of the student; evaluation batches of
    distillation examples give that weighted loss (``eval_loss``, the held-out criterion of general
    distillation). Each epoch's mean training loss components are logged as ``loss_<name>``."""

    def __init__(self, *args: Any, teacher: PreTrainedModel | None, loss_settings: LossSettings, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.teacher = teacher
        self.loss_settings = loss_settings
        if teacher is not None:  # it runs under no_grad: its parameters' flags stay the caller's
            teacher.to(self.args.device).eval()
        self._sums: dict[str, float] = defaultdict(float)
        self._steps = 0

    def _weighted_loss(self, model: nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        parts = distillation_losses(model, inputs, self.loss_settings, self.teacher)
        weights = self.loss_settings.weights()
        return sum(weights[name] * value for name, value in parts.items()), parts

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
        if "word_labels" not in inputs:  # evaluation batches: plain token classification
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss, parts = self._weighted_loss(model, inputs)
        for name, value in parts.items():
            self._sums[name] += float(value.detach())
        self._steps += 1
        return (loss, None) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):  # noqa: ANN001
        if "word_labels" not in inputs:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss, _ = self._weighted_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "loss" in logs and self._steps:
            logs = {**logs, **{f"loss_{k}": v / self._steps for k, v in self._sums.items()}}
            self._sums.clear()
            self._steps = 0
        super().log(logs, *args, **kwargs)


def without_attention_dropout(model: PreTrainedModel) -> int:
    """Set the dropout on the attention probabilities of ``model``'s attention modules to 0, in the modules
    and in the config; returns how many modules had some. The eager implementation returns the maps after
    dropout: a student's dropped keys would have probability 0 where the teacher's have mass, and their
    log(~0) terms would swamp the attention KL (nearly 3 nats per query at BERT's 0.1)."""
    changed = 0
    for module in model.modules():
        dropout = getattr(module, "dropout", None)
        if "attention" in type(module).__name__.lower() and isinstance(dropout, nn.Dropout):
            changed += dropout.p > 0
            dropout.p = 0.0
    for key in ("attention_probs_dropout_prob", "attention_dropout"):
        if hasattr(model.config, key):
            setattr(model.config, key, 0.0)
    return changed


def attach_projections(student: PreTrainedModel, teacher_width: int, n_pairs: int, seed: int) -> None:
    """Give the student learned linear maps to the teacher's width (only when the widths differ)."""
    width = student.config.hidden_size
    if width == teacher_width:
        return
    torch.manual_seed(seed)
    setattr(student, PROJECTIONS, nn.ModuleList([nn.Linear(width, teacher_width) for _ in range(n_pairs)]))


def detach_projections(student: PreTrainedModel) -> None:
    if hasattr(student, PROJECTIONS):
        delattr(student, PROJECTIONS)


def cached_word_outputs(folder: Path, sentences: Sequence[Sequence[str]], key: Sequence[str],
                        compute: Callable[[], WordOutputs]) -> WordOutputs:
    """The teacher's word outputs for ``sentences``, read from ``folder`` when an earlier process (another
    rank, another run of the same teacher on the same sentences, or the run that was interrupted) stored
    them under the same sentences and ``key``; otherwise ``compute()``d and stored there.

    They are stored as a folder of ``.npy`` arrays (written whole, then renamed: never read
    half-written) and read memory-mapped, so a transfer set of any size stays on disk until a batch
    reads its rows."""
    digest = hashlib.sha256("\x1f".join(key).encode())
    for words in sentences:
        digest.update(("\x1e" + "\x1f".join(words)).encode())
    path = folder / f"teacher-outputs-{digest.hexdigest()[:16]}"
    if (path / "lengths.npy").is_file():
        print(f"teacher outputs for {len(sentences):,} sentences read from {path}")
        return _read_outputs(path)
    outputs = compute()
    print(f"teacher outputs for {len(sentences):,} sentences computed and stored in {path}")
    partial = path.with_name(f"{path.name}.partial-{os.getpid()}")
    partial.mkdir(parents=True, exist_ok=True)
    arrays = {"logits": np.concatenate(outputs.logits), "present": np.concatenate(outputs.present),
              "lengths": np.array([len(p) for p in outputs.present])}
    if outputs.hidden is not None:
        arrays["hidden"] = np.concatenate(outputs.hidden, axis=1)
    for name, array in arrays.items():
        np.save(partial / f"{name}.npy", array)
    try:
        os.replace(partial, path)
    except OSError:  # another process stored the same outputs first
        shutil.rmtree(partial, ignore_errors=True)
    return _read_outputs(path)


def update_digest(digest: hashlib._Hash, outputs: WordOutputs) -> None:
    """Feed ``outputs``' word logits (float32) and presence masks to ``digest``, sentence by sentence: equal
    digests mean the students of two runs learned from the same soft targets, bit for bit."""
    for logits, present in zip(outputs.logits, outputs.present):
        digest.update(np.ascontiguousarray(logits, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(present, dtype=np.bool_).tobytes())


def _read_outputs(path: Path) -> WordOutputs:
    lengths = np.load(path / "lengths.npy")
    cut = np.cumsum(lengths)[:-1]
    logits = np.load(path / "logits.npy", mmap_mode="r")
    present = np.load(path / "present.npy", mmap_mode="r")
    hidden = None
    if (path / "hidden.npy").is_file():
        hidden = np.split(np.load(path / "hidden.npy", mmap_mode="r"), cut, axis=1)
    return WordOutputs(np.split(logits, cut), hidden, np.split(present, cut))


def mean_word_outputs(members: Sequence[WordOutputs]) -> WordOutputs:
    """An ensemble's word outputs: per word the arithmetic mean of the members' logits, present where
    every member sees the word; hidden states are the first member's."""
    if not members:
        raise ValueError("mean_word_outputs: no member outputs")
    first = members[0]
    logits = [np.mean([np.asarray(m.logits[i]) for m in members], axis=0, dtype=np.float32)
              for i in range(len(first.logits))]
    present = [np.logical_and.reduce([np.asarray(m.present[i]) for m in members]) for i in range(len(first.present))]
    return WordOutputs(logits, first.hidden, present)


def teacher_targets(teachers: Sequence[tuple[PreTrainedModel, PreTrainedTokenizerBase]],
                    words: Sequence[Sequence[str]], settings: TrainSettings, losses: LossSettings, cache: Path,
                    device: str = "cpu", environment: str = "") -> WordOutputs:
    """The soft targets of ``words``: the word outputs of the one teacher, or the mean of an ensemble's
    (:func:`mean_word_outputs`), each member's cached in ``cache`` under its weights' digest, the device type
    and ``environment`` (what decides the numerics where they are computed: another CPU's kernels or
    pinned ones compute other last digits, so they compute their own); hidden states (the teacher layers of
    ``losses.layer_map``) come from the first member."""
    precision = resolve_precision(settings.precision, device)
    layers = [t for _, t in losses.layer_map] if losses.hidden_weight > 0 else []
    members = []
    for j, (model, tokenizer) in enumerate(teachers):
        member_layers = layers if j == 0 else []
        key = [weights_digest(model), str(settings.max_length), losses.word_pooling, precision, str(member_layers),
               torch.device(device).type, environment]
        with main_process_first(device):  # rank 0 computes, the other ranks read its file
            members.append(cached_word_outputs(cache, words, key, lambda m=model, t=tokenizer, h=member_layers:
                                               word_outputs(m, t, words, batch_size=64,
                                                            max_length=settings.max_length,
                                                            pooling=losses.word_pooling, device=device,
                                                            hidden_layers=h, precision=precision)))
    return members[0] if len(members) == 1 else mean_word_outputs(members)


def distill_student(
    student: PreTrainedModel,
    student_tokenizer: PreTrainedTokenizerBase,
    teacher: PreTrainedModel,
    teacher_tokenizer: PreTrainedTokenizerBase,
    train: list[Sentence],
    validation: list[Sentence],
    labels: list[str],
    settings: TrainSettings,
    losses: LossSettings,
    output_dir: str | Path,
    *,
    transfer: Sequence[Sequence[str]] = (),
    extra_teachers: Sequence[tuple[PreTrainedModel, PreTrainedTokenizerBase]] = (),
    teacher_cache: str | Path | None = None,
    cache_teacher: bool = True,
    cache_environment: str = "",
    device: str = "cpu",
    on_epoch: Callable[[dict[str, float], int], None] | None = None,
    resume: bool = True,
    progress: bool = True,
    quant_scheme: QuantScheme | None = None,
) -> dict[str, Any]:
    """Train ``student`` against ``teacher`` on ``train`` (gold labels) plus ``transfer`` (teacher only).

    ``labels`` is the label list of both models (same ids). The teacher runs and the student trains on
    ``device``. ``extra_teachers`` (model, tokenizer) make an ensemble with ``teacher``: the soft targets
    are the mean of the members' word logits (:func:`mean_word_outputs`; cached outputs only), hidden-state
    targets stay ``teacher``'s. Cached teacher outputs go to ``teacher_cache`` (default ``output_dir``),
    where runs of other students on the same sentences in the same ``cache_environment`` find them
    (:func:`teacher_targets`). Early stopping and the best epoch use the student's validation entity F1,
    as in fine-tuning; an interrupted run resumes from the last checkpoint in ``output_dir``. With
    ``quant_scheme``, the student trains and is validated with the rounding of its ONNX Runtime int8 model
    (:mod:`findistill.training.qat`) and is returned with its plain float forward passes. Returns the
    :func:`findistill.training.trainer.fit` summary plus ``teacher_seconds`` (time spent computing the
    cached teacher outputs), example counts and, with ``cache_teacher``, ``teacher_targets_sha256``
    (:func:`update_digest` over the soft targets of the training set, then of the transfer set).
    """
    if losses.attention_weight > 0 and cache_teacher:
        raise ValueProblem("cache_teacher", "the attention loss needs the teacher's attention maps at "
                          "every step; set cache_teacher=false (or attention_weight=0)")
    if extra_teachers and not cache_teacher:
        raise ValueProblem("cache_teacher", "an ensemble teacher needs cached teacher outputs; set cache_teacher=true")
    if losses.word_pooling not in POOLINGS:
        raise ValueProblem("word_pooling", f"expected one of {', '.join(POOLINGS)}, "
                          f"got {losses.word_pooling!r}")
    set_seed(settings.seed)
    label2id = {label: i for i, label in enumerate(labels)}
    teacher.to(device).eval()
    for member, _ in extra_teachers:
        member.to(device).eval()
    if losses.attention_weight > 0:  # attention maps come only from the eager implementation
        for model in (student, teacher):
            model.set_attn_implementation("eager")
        without_attention_dropout(student)
    if quant_scheme is not None:  # before the projections: they serve the loss and are not exported
        attach_fake_quant(student, quant_scheme)
    if losses.hidden_weight > 0:
        attach_projections(student, teacher.config.hidden_size, len(losses.layer_map), settings.seed)
    started = time.perf_counter()
    groups = [([s.tokens for s in train], [s.tags for s in train]), ([list(w) for w in transfer], None)]
    examples: list[dict[str, Any]] = []
    targets_digest = hashlib.sha256()
    for words, tags in groups:
        if not words:
            continue
        if cache_teacher:
            targets = teacher_targets([(teacher, teacher_tokenizer), *extra_teachers], words, settings, losses,
                                      Path(teacher_cache or output_dir), device, cache_environment)
            examples += build_examples(student_tokenizer, words, tags, label2id, settings.max_length, targets=targets)
            update_digest(targets_digest, targets)
        else:
            examples += build_examples(student_tokenizer, words, tags, label2id, settings.max_length,
                                       teacher_tokenizer=teacher_tokenizer, teacher_max_length=settings.max_length)
    teacher_seconds = time.perf_counter() - started
    val_chunks = encode_split(student_tokenizer, validation, labels, settings.max_length)
    trainer = DistillTrainer(
        model=student,
        args=training_arguments(settings, output_dir, device=device, progress=progress, remove_unused_columns=False),
        train_dataset=examples,
        eval_dataset=[c.features for c in val_chunks],
        data_collator=DistillCollator(student_tokenizer, teacher_tokenizer),
        processing_class=student_tokenizer,
        compute_metrics=metrics_fn(val_chunks, validation, labels),
        preprocess_logits_for_metrics=argmax_logits,
        callbacks=trainer_callbacks(settings, on_epoch),
        teacher=None if cache_teacher else teacher,
        loss_settings=losses,
    )
    try:
        summary = fit(trainer, output_dir, resume=resume)
    finally:
        detach_fake_quant(student)
    detach_projections(student)
    summary.update(teacher_seconds=teacher_seconds, train_examples=len(examples), transfer_sentences=len(transfer))
    if cache_teacher:
        summary["teacher_targets_sha256"] = targets_digest.hexdigest()
    return summary
