"""Fine-tuning a token classifier on word-labelled NER data with the Hugging Face Trainer.

What the Trainer gives us and we do not rewrite: AdamW with linear warm-up/decay, gradient clipping,
length-grouped batches (``train_sampling_strategy="group_by_length"``; SEC sentences are long),
dynamic padding, a checkpoint per epoch with resume, early stopping on validation entity F1, seeds,
and progress bars. What we add: word-level chunk encoding and the entity-F1 ``compute_metrics``,
and a callback hook so the stage can log each epoch to MLflow. :func:`build_trainer` is the one
place a Trainer is assembled (fine-tuning, distillation, masked-LM training).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import SequentialSampler
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
from transformers.trainer_utils import get_last_checkpoint

from findistill.config import require
from findistill.data.corpus import Sentence
from findistill.evaluation.scoring import chunk_predictions_to_tags, entity_scores
from findistill.models.words import encode


@dataclass
class TrainSettings:
    """Optimisation settings shared by every stage that trains (``finetune``, later ``distill``).

    Stage configs inherit these fields, so parameter names and defaults agree everywhere.
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

    def check_settings(self) -> None:
        """Raise ConfigError naming the first optimisation setting out of range (stage configs call it)."""
        require(self.epochs >= 1, "epochs", "an integer >= 1", self.epochs)
        require(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        require(self.learning_rate > 0, "learning_rate", "a positive number", self.learning_rate)
        require(0 <= self.warmup_ratio < 1, "warmup_ratio", "a fraction in [0, 1)", self.warmup_ratio)
        require(8 <= self.max_length <= 4096, "max_length", "between 8 and 4096 sub-tokens", self.max_length)
        require(self.patience >= 1, "patience", "an integer >= 1", self.patience)

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
            metrics = {k: v for k, v in metrics.items() if not k.endswith(("_runtime", "_per_second"))}
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


class WordLevelTrainer(Trainer):
    """Trainer whose evaluation keeps dataset order.

    transformers 5 also applies ``group_by_length`` to evaluation batches; our ``compute_metrics``
    maps predictions back to sentences by position, so evaluation must stay sequential.
    """

    def _get_eval_sampler(self, eval_dataset):  # noqa: ANN001 (Trainer signature)
        return SequentialSampler(eval_dataset) if eval_dataset is not None else None


def argmax_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Keep only predicted ids during evaluation (no need to gather full logits)."""
    return logits.argmax(-1)


def training_arguments(settings: TrainSettings, output_dir: str | Path, *, progress: bool = True,
                       **overrides: Any) -> TrainingArguments:
    """The TrainingArguments every findistill training uses: per-epoch evaluation, checkpoints and
    logging, best epoch by validation entity F1 restored at the end, length-grouped batches."""
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
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
        use_cpu=not torch.cuda.is_available(),
    )
    kwargs.update(overrides)
    return TrainingArguments(**kwargs)


def encode_split(tokenizer: PreTrainedTokenizerBase, sentences: list[Sentence], labels: list[str],
                 max_length: int) -> list:
    """Labelled chunks of ``sentences`` (see :func:`findistill.ner.encode`)."""
    label2id = {label: i for i, label in enumerate(labels)}
    return encode(tokenizer, [s.tokens for s in sentences], [s.tags for s in sentences], label2id, max_length)


def trainer_callbacks(settings: TrainSettings,
                      on_epoch: Callable[[dict[str, float], int], None] | None) -> list[TrainerCallback]:
    callbacks: list[TrainerCallback] = [EarlyStoppingCallback(early_stopping_patience=settings.patience)]
    if on_epoch is not None:
        callbacks.append(EpochLogger(on_epoch))
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
    progress: bool = True,
) -> Trainer:
    """A Trainer over word-labelled sentences whose ``evaluate()`` reports entity P/R/F1 (``eval_f1``...)."""
    train_chunks = encode_split(tokenizer, train, labels, settings.max_length)
    val_chunks = encode_split(tokenizer, validation, labels, settings.max_length)
    return WordLevelTrainer(
        model=model,
        args=training_arguments(settings, output_dir, progress=progress),
        train_dataset=[c.features for c in train_chunks],
        eval_dataset=[c.features for c in val_chunks],
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
        compute_metrics=metrics_fn(val_chunks, validation, labels),
        preprocess_logits_for_metrics=argmax_logits,
        callbacks=trainer_callbacks(settings, on_epoch),
    )


def fit(trainer: Trainer, output_dir: str | Path, *, resume: bool = True) -> dict[str, Any]:
    """Run ``trainer`` (resuming from the last checkpoint in ``output_dir`` when there is one and
    ``resume`` is set); return ``best_val_f1``, ``best_epoch``, ``epochs_run``, ``resumed_from``,
    ``train_seconds``. The best epoch's weights are in the model afterwards."""
    output_dir = Path(output_dir)
    checkpoint = get_last_checkpoint(str(output_dir)) if resume and output_dir.is_dir() else None
    result = trainer.train(resume_from_checkpoint=checkpoint)
    state = trainer.state
    best_epoch = next(
        (int(round(e["epoch"])) for e in state.log_history if e.get("eval_f1") == state.best_metric), None
    )
    return {
        "best_val_f1": float(state.best_metric) if state.best_metric is not None else float("nan"),
        "best_epoch": best_epoch,
        "epochs_run": int(round(state.epoch or 0)),
        "resumed_from": checkpoint,
        "train_seconds": float(result.metrics.get("train_runtime", 0.0)),
    }


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
    resume: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune ``model`` on word-labelled sentences; return a summary (see :func:`fit`).

    The best epoch by validation entity F1 is loaded at the end. ``output_dir`` holds one
    checkpoint per epoch; when it already has one and ``resume`` is set, training continues from
    the latest (an interrupted run resumes).
    """
    set_seed(settings.seed)
    trainer = build_trainer(
        model, tokenizer, train, validation, labels, settings, output_dir, on_epoch=on_epoch, progress=progress
    )
    return fit(trainer, output_dir, resume=resume)


def remove_checkpoints(output_dir: str | Path) -> None:
    """Delete the per-epoch checkpoints once the final model is safely logged."""
    shutil.rmtree(output_dir, ignore_errors=True)
