"""Fine-tuning a token classifier on word-labelled NER data with the Hugging Face Trainer.

What the Trainer gives us and we do not rewrite: AdamW with linear warm-up/decay, gradient clipping,
length-grouped batches (``train_sampling_strategy="group_by_length"``; SEC sentences are long),
dynamic padding, a checkpoint per epoch with resume, early stopping on validation entity F1, seeds,
and progress bars. What we add: word-level chunk encoding and the entity-F1 ``compute_metrics``,
a callback hook so the stage can log each epoch to MLflow, and training on exactly the device a
stage asks for. :func:`training_arguments` is the one place the arguments of every findistill
Trainer (fine-tuning, distillation, masked-LM training, general distillation) are made, device
included; :func:`build_trainer` assembles the fine-tuning Trainer.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import DistributedType
from torch.utils.data import SequentialSampler
from tqdm.auto import tqdm
from transformers import (
    DataCollatorForTokenClassification,
    EarlyStoppingCallback,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_callback import ProgressCallback
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import get_last_checkpoint

from findistill.config import ValueProblem, require
from findistill.costs.device import parse_device
from findistill.data.corpus import Sentence
from findistill.evaluation.scoring import chunk_predictions_to_tags, entity_scores
from findistill.models.words import encode
from findistill.training.distributed import main_process_first, resolve_precision

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainSettings:
    """Optimisation settings shared by every stage that trains (``finetune``, ``distill``, ``adapt``).

    Stage configs inherit these fields, so parameter names and defaults agree everywhere.
    ``checkpoint_steps`` (N > 0) adds a checkpoint every N optimizer steps to the one per epoch, so a
    killed run loses at most N steps. ``precision`` is the arithmetic of training (and of the teacher's
    outputs in distillation): ``fp32``, ``bf16`` (autocast; CPUs and GPUs that support it), ``fp16``
    (autocast with loss scaling, CUDA only) or ``auto`` (bf16 on a GPU that supports it, else fp32).
    """

    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_length: int = 256
    patience: int = 3
    seed: int = 42
    checkpoint_steps: int = 0
    precision: str = "fp32"

    def check_settings(self) -> None:
        """Raise ConfigError naming the first optimisation setting out of range (stage configs call it)."""
        require(self.epochs >= 1, "epochs", "an integer >= 1", self.epochs)
        require(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        require(self.learning_rate > 0, "learning_rate", "a positive number", self.learning_rate)
        require(0 <= self.warmup_ratio < 1, "warmup_ratio", "a fraction in [0, 1)", self.warmup_ratio)
        require(8 <= self.max_length <= 4096, "max_length", "between 8 and 4096 sub-tokens", self.max_length)
        require(self.patience >= 1, "patience", "an integer >= 1", self.patience)
        require(self.checkpoint_steps >= 0, "checkpoint_steps", "0 (a checkpoint per epoch only) or a step count "
                ">= 1", self.checkpoint_steps)
        require(self.precision in PRECISIONS, "precision", f"one of {', '.join(PRECISIONS)}", self.precision)

    def settings(self) -> "TrainSettings":
        """Just the training settings of a (possibly larger) stage config."""
        return TrainSettings(**{f.name: getattr(self, f.name) for f in fields(TrainSettings)})


class EpochLogger(TrainerCallback):
    """Calls ``log(metrics, epoch)`` with the training loss and validation scores of each epoch.

    On a resumed run the epochs logged before the interruption are replayed first, so the
    new MLflow run holds the whole curve.
    """

    def __init__(self, log: Callable[[dict[str, float], int], None], eval_key: str | None = "eval_f1"):
        self.log = log
        self.eval_key = eval_key  # the evaluation entry that closes an epoch; None: no evaluation
        self._train_loss: float | None = None
        self._parts: dict[str, float] = {}  # loss components a distillation logs beside "loss"

    def _record(self, entry: dict[str, Any]) -> None:
        if "loss" in entry:  # mean training loss of the epoch (logging_strategy="epoch")
            self._train_loss = float(entry["loss"])
            self._parts = {f"train_{k}": float(v) for k, v in entry.items() if k.startswith("loss_")}
            if self.eval_key is None:
                self.log({"train_loss": self._train_loss, **self._parts}, int(round(entry.get("epoch", 0))))
        if self.eval_key is not None and self.eval_key in entry:
            metrics = {k.replace("eval_", "val_"): float(v) for k, v in entry.items() if k.startswith("eval_")}
            timings = ("_runtime", "_per_second", "_time")  # eval_runtime, ..., eval_model_preparation_time
            metrics = {k: v for k, v in metrics.items() if not k.endswith(timings)}
            if self._train_loss is not None:
                metrics["train_loss"] = self._train_loss
                metrics.update(self._parts)
            self.log(metrics, int(round(entry.get("epoch", 0))))

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001 (Trainer callback signature)
        for entry in state.log_history:  # non-empty only when resuming from a checkpoint
            self._record(entry)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
        if logs:
            self._record({**logs, "epoch": state.epoch or 0})


def metrics_fn(chunks, sentences: list[Sentence], labels: list[str]) -> Callable:
    """``compute_metrics`` for the Trainer: token predictions of the chunks -> word tags -> entity scores."""
    gold = [s.tags for s in sentences]
    lengths = [len(s.tokens) for s in sentences]

    def compute(eval_pred) -> dict[str, float]:  # noqa: ANN001
        predicted_ids, label_ids = eval_pred.predictions, eval_pred.label_ids
        predicted = chunk_predictions_to_tags(chunks, predicted_ids, label_ids, lengths, labels)
        scores = entity_scores(gold, predicted)
        return {k: v for k, v in scores.items() if not k.startswith("support_")}

    return compute


class EpochProgress(ProgressCallback):
    """The Trainer's progress bars, with one readable line per epoch instead of its raw log dicts:
    ``epoch 3/10: train loss 0.1290 | val loss 0.1442, val f1 0.6319``."""

    SHOWN = ("loss", "f1", "precision", "recall")

    def __init__(self) -> None:
        super().__init__()
        self._train: str = ""

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 (Trainer callback signature)
        if not state.is_world_process_zero or not logs:
            return
        if "loss" in logs:
            parts = [f"{k.removeprefix('loss_')} {float(v):.4f}" for k, v in logs.items() if k.startswith("loss_")]
            self._train = f"train loss {float(logs['loss']):.4f}" + (f" ({', '.join(parts)})" if parts else "")
        validation = [f"val {k} {float(logs[f'eval_{k}']):.4f}" for k in self.SHOWN if f"eval_{k}" in logs]
        evaluating = str(getattr(args.eval_strategy, "value", args.eval_strategy)) != "no"
        if validation or ("loss" in logs and not evaluating):
            line = " | ".join(part for part in (self._train, ", ".join(validation)) if part)
            tqdm.write(f"epoch {round(state.epoch or 0)}/{round(args.num_train_epochs)}: {line}")
            self._train = ""
        elif "train_runtime" in logs:
            tqdm.write(f"trained {round(state.epoch or 0)} epoch(s) in {float(logs['train_runtime']):.0f} s")


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """Length-grouped batches in an order drawn from ``seed + epoch`` alone.

    transformers' sampler draws each epoch's order from the global random state at the epoch's start,
    which a run resumed in a later epoch does not have (it restores the state of its checkpoint's step):
    it would see the rest of that epoch in another order than the run that was never stopped. The
    Trainer (through Accelerate, on every rank) calls ``set_epoch`` before each epoch."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return super().__iter__()


class WordLevelTrainer(Trainer):
    """Trainer whose training order is fixed by the seed and the epoch (so resuming mid-run changes
    nothing), whose evaluation keeps dataset order and whose console shows one line per epoch.

    transformers 5 also applies ``group_by_length`` to evaluation batches; our ``compute_metrics``
    maps predictions back to sentences by position, so evaluation must stay sequential.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.pop_callback(ProgressCallback) is not None:
            self.add_callback(EpochProgress())

    def _get_train_sampler(self, train_dataset=None):  # noqa: ANN001 (Trainer signature)
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler:
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return EpochSeededLengthGroupedSampler(sampler.batch_size, sampler.lengths, seed)
        return sampler

    def _get_eval_sampler(self, eval_dataset):  # noqa: ANN001 (Trainer signature)
        return SequentialSampler(eval_dataset) if eval_dataset is not None else None


def argmax_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Keep only predicted ids during evaluation (no need to gather full logits)."""
    return logits.argmax(-1)


@dataclass
class DeviceTrainingArguments(TrainingArguments):
    """TrainingArguments that train on exactly one device, ``train_device``: ``cpu``, ``cuda:N``, or
    ``cuda`` (``cuda:0``, the first visible GPU).

    transformers alone has one switch, ``use_cpu``; without it a Trainer takes ``cuda:0`` whenever
    CUDA is present, and several visible GPUs turn into ``nn.DataParallel`` over all of them. Here
    ``cpu`` sets ``use_cpu``; a CUDA device is pinned after transformers' own set-up: ``device`` is
    that device (the model and every batch go there), it becomes the current CUDA device and the
    device of the Accelerate state, and ``n_gpu`` is 1 (no DataParallel). Under a distributed launch
    (torchrun) the launcher's per-process device is kept.
    """

    train_device: str = field(default="cpu", metadata={"help": "cpu, cuda or cuda:N: the one device to train on."})

    def __post_init__(self) -> None:
        wanted = parse_device(self.train_device)
        self.use_cpu = wanted.type == "cpu"
        if wanted.type == "cuda":
            visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if (wanted.index or 0) >= visible:
                raise ValueProblem("device", f"{self.train_device!r} requested but {visible} CUDA "
                                  "device(s) are visible here")
        super().__post_init__()

    @cached_property
    def _setup_devices(self) -> torch.device:
        found = TrainingArguments._setup_devices.func(self)
        wanted = parse_device(self.train_device)
        if wanted.type != "cuda" or self.distributed_state.distributed_type != DistributedType.NO:
            return found
        wanted = torch.device("cuda", wanted.index or 0)
        torch.cuda.set_device(wanted)
        self.distributed_state.device = wanted  # the Accelerator created by the Trainer reads it from here
        self._n_gpu = 1
        return wanted


def training_arguments(settings: TrainSettings, output_dir: str | Path, *, device: str | torch.device = "cpu",
                       progress: bool = True, **overrides: Any) -> TrainingArguments:
    """The TrainingArguments every findistill training uses: per-epoch evaluation, checkpoints and
    logging, best epoch by validation entity F1 restored at the end, length-grouped batches, the
    settings' ``precision`` (see :func:`resolve_precision`), and training on ``device`` alone (see
    :class:`DeviceTrainingArguments`; under ``torchrun`` each process on its own device)."""
    precision = resolve_precision(settings.precision, str(device))
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        train_device=str(device),
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=max(32, settings.batch_size),
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        warmup_steps=settings.warmup_ratio,
        max_grad_norm=settings.max_grad_norm,
        lr_scheduler_type="linear",
        train_sampling_strategy="group_by_length",
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="f1",
        greater_is_better=True,
        save_total_limit=settings.patience + 1,
        seed=settings.seed,
        data_seed=settings.seed,
        report_to="none",
        disable_tqdm=not progress,
        dataloader_pin_memory=parse_device(device).type == "cuda",  # pinning would start CUDA for a CPU run
        bf16=precision == "bf16",
        fp16=precision == "fp16",
    )
    kwargs.update(overrides)
    return DeviceTrainingArguments(**kwargs)


def encode_split(tokenizer: PreTrainedTokenizerBase, sentences: list[Sentence], labels: list[str],
                 max_length: int) -> list:
    """Labelled chunks of ``sentences`` (see :func:`findistill.ner.encode`)."""
    label2id = {label: i for i, label in enumerate(labels)}
    return encode(tokenizer, [s.tokens for s in sentences], [s.tags for s in sentences], label2id, max_length)


class StepCheckpoints(TrainerCallback):
    """A checkpoint every ``every`` optimizer steps, besides the Trainer's one per epoch. The Trainer
    writes it in full (weights, optimizer, scheduler, RNG states, the step reached), so a run killed
    mid-epoch resumes at that step and skips the batches it already trained on."""

    def __init__(self, every: int):
        self.every = every

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 (Trainer callback signature)
        if state.global_step % self.every == 0:
            control.should_save = True
        return control


def trainer_callbacks(settings: TrainSettings, on_epoch: Callable[[dict[str, float], int], None] | None, *,
                      eval_key: str | None = "eval_f1") -> list[TrainerCallback]:
    """A checkpoint every ``settings.checkpoint_steps`` steps (when > 0), early stopping after
    ``settings.patience`` epochs without a better validation score, and ``on_epoch`` called after each
    epoch's evaluation entry ``eval_key``; ``eval_key=None``: no evaluation, so no early stopping, and
    ``on_epoch`` gets each epoch's training loss."""
    callbacks: list[TrainerCallback] = []
    if settings.checkpoint_steps > 0:
        callbacks.append(StepCheckpoints(settings.checkpoint_steps))
    if eval_key is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=settings.patience))
    if on_epoch is not None:
        callbacks.append(EpochLogger(on_epoch, eval_key=eval_key))
    return callbacks


def build_trainer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train: list[Sentence],
    validation: list[Sentence],
    labels: list[str],
    settings: TrainSettings,
    output_dir: str | Path,
    *,
    on_epoch: Callable[[dict[str, float], int], None] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> Trainer:
    """A Trainer over word-labelled sentences, training on ``device``, whose ``evaluate()`` reports
    entity P/R/F1 (``eval_f1``...)."""
    train_chunks = encode_split(tokenizer, train, labels, settings.max_length)
    val_chunks = encode_split(tokenizer, validation, labels, settings.max_length)
    return WordLevelTrainer(
        model=model,
        args=training_arguments(settings, output_dir, device=device, progress=progress),
        train_dataset=[c.features for c in train_chunks],
        eval_dataset=[c.features for c in val_chunks],
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
        compute_metrics=metrics_fn(val_chunks, validation, labels),
        preprocess_logits_for_metrics=argmax_logits,
        callbacks=trainer_callbacks(settings, on_epoch),
    )


def last_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The newest ``checkpoint-<step>`` folder of ``output_dir`` that was written to the end (its
    ``trainer_state.json``, which the Trainer writes after the weights and optimizer, is there); None when
    there is none. A process killed while writing a checkpoint leaves a partial folder: it is deleted."""
    output_dir = Path(output_dir)
    while output_dir.is_dir():
        newest = get_last_checkpoint(str(output_dir))
        if newest is None or (Path(newest) / "trainer_state.json").is_file():
            return newest
        print(f"deleting the incomplete checkpoint {newest} (its writer was stopped half-way)")
        shutil.rmtree(newest)
    return None


def fit(trainer: Trainer, output_dir: str | Path, *, resume: bool = True) -> dict[str, Any]:
    """Run ``trainer`` (resuming from the last checkpoint in ``output_dir`` when there is one and
    ``resume`` is set); return ``epochs_run``, ``resumed_from``, ``train_seconds`` and, when the
    trainer selects a best epoch by a validation metric ``m`` (``f1``, ``loss``), ``best_val_m`` and
    ``best_epoch``. The best epoch's weights are in the model afterwards."""
    output_dir = Path(output_dir)
    with main_process_first(str(trainer.args.device)):  # rank 0 deletes a half-written checkpoint, once
        checkpoint = last_complete_checkpoint(output_dir) if resume else None
    result = trainer.train(resume_from_checkpoint=checkpoint)
    state = trainer.state
    summary: dict[str, Any] = {
        "epochs_run": int(round(state.epoch or 0)),
        "resumed_from": checkpoint,
        "train_seconds": float(result.metrics.get("train_runtime", 0.0)),
        "train_steps": int(state.global_step),
        "train_samples_per_second": float(result.metrics.get("train_samples_per_second", 0.0)),
    }
    metric = trainer.args.metric_for_best_model
    if metric is not None:
        name = metric.removeprefix("eval_")
        summary[f"best_val_{name}"] = float(state.best_metric) if state.best_metric is not None else float("nan")
        summary["best_epoch"] = next(
            (int(round(e["epoch"])) for e in state.log_history if e.get(f"eval_{name}") == state.best_metric), None
        )
    return summary


def train_token_classifier(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train: list[Sentence],
    validation: list[Sentence],
    labels: list[str],
    settings: TrainSettings,
    output_dir: str | Path,
    *,
    on_epoch: Callable[[dict[str, float], int], None] | None = None,
    device: str | torch.device = "cpu",
    resume: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune ``model`` on word-labelled sentences on ``device``; return a summary (see :func:`fit`).

    The best epoch by validation entity F1 is loaded at the end. ``output_dir`` holds one
    checkpoint per epoch; when it already has one and ``resume`` is set, training continues from
    the latest (an interrupted run resumes).
    """
    set_seed(settings.seed)
    trainer = build_trainer(
        model, tokenizer, train, validation, labels, settings, output_dir, on_epoch=on_epoch, device=device,
        progress=progress,
    )
    return fit(trainer, output_dir, resume=resume)


def remove_checkpoints(output_dir: str | Path) -> None:
    """Delete the per-epoch checkpoints once the final model is safely logged."""
    shutil.rmtree(output_dir, ignore_errors=True)
