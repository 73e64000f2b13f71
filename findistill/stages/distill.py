"""``distill``: Distil a fine-tuned teacher into a student (fewer layers, same or domain tokenizer)
word against word: KD/CE/hidden/attention losses, optional transfer set; logs per-epoch loss
components, the student and its evaluation with resource metrics.

The student is the teacher's own layers (or another model's, ``student_init``) cut to
``student_layers`` and optionally given a domain vocabulary; it learns from the teacher word
against word (:mod:`findistill.training.distill`) on the labelled training split plus an optional
transfer set, and is then evaluated and logged exactly like a fine-tuned model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import mlflow
import numpy as np
from transformers import set_seed

from findistill.config import ConfigError, as_parameters, require
from findistill.data.corpus import DataError, NerData, Sentence
from findistill.data.text import word_sentences
from findistill.evaluation.predict import check_label_compatibility
from findistill.models.ensemble import check_labels
from findistill.models.loading import load_token_classifier, load_tokenizer, model_labels
from findistill.models.students import layer_list, map_layers, select_layers
from findistill.stages.common import (
    TrainingStageParams,
    checkpoint_path,
    finish_training,
    load_stage_data,
    log_data,
    make_student,
    tag_initial_weights,
    training_device,
)
from findistill.tracking.environment import environment_tags, fingerprint
from findistill.tracking.runs import localize, localize_model, log_metrics, stage_run
from findistill.training.distill import LossSettings, distill_student, teacher_targets
from findistill.training.kd_losses import HIDDEN_LOSSES, POOLINGS
from findistill.training.qat import QuantScheme
from findistill.training.transfer_sets import (
    entity_choice,
    entity_word_counts,
    select_transfer,
    sentence_key,
    swap_mentions,
)

#: how the transfer sentences are chosen among the candidates of their sources
TRANSFER_SELECTIONS = ("random", "entities")


@dataclass
class Config(TrainingStageParams):
    """``distill``: train a student from ``teacher`` (a fine-tuned NER model: ``runs:/<id>/model``,
    ``models:/<name>@<alias>`` or a folder; several, comma-separated, make an ensemble whose soft
    targets are the mean of the members' word logits) and evaluate it with resource metrics.

    Student: ``student_layers`` of the layers of ``student_init`` (``teacher``: the fine-tuned
    teacher itself; or another model reference) chosen by ``layer_selection``, with ``tokenizer``
    (``same`` or a domain tokenizer, embeddings by ``vocab_transfer``). Loss: ``kd_weight`` x
    KL at ``temperature`` (x T^2) + ``ce_weight`` x gold cross-entropy + ``hidden_weight`` x
    ``hidden_loss`` (mse/cosine) between the ``hidden_layers`` pairs (uniform, kept, last or
    ``1:2,2:4``) + ``attention_weight`` x
    attention KL (same tokenizer, ``cache_teacher=false``), all on words pooled by
    ``word_pooling``. ``transfer_data`` (``none``, or comma-separated sources: ``augment``, another
    NER corpus, raw text) adds ``transfer_ratio`` x (training sentences) sentences per source with
    teacher labels only, drawn at random (``transfer_select=random``) or, with ``entities``, the ones
    in which the (first) teacher tags the most words as entities out of ``transfer_pool`` times as many
    drawn (``transfer_entity_share`` of them; the others are a random sample of the pool). Cached teacher
    outputs are kept in ``teacher_cache`` (``auto``: beside the checkpoints,
    ``.findistill/teacher-outputs``, shared by every run on the same sentences). ``quant_aware`` trains
    (and selects the best epoch) with the rounding of the student's ONNX Runtime int8 model
    (``quantize -P variant=onnx-int8`` with ``per_channel=quant_per_channel`` and
    ``reduce_range=quant_reduce_range``): quantization-aware training; the logged student keeps float32
    weights, to be quantized by that stage.
    """

    REQUIRED: ClassVar[tuple[str, ...]] = ("teacher",)  # declared without a default in MLproject

    teacher: str = ""
    student_init: str = "teacher"
    student_layers: int = 3
    temperature: float = 2.0
    kd_weight: float = 1.0
    ce_weight: float = 1.0
    hidden_weight: float = 0.0
    hidden_loss: str = "mse"
    hidden_layers: str = "uniform"
    attention_weight: float = 0.0
    word_pooling: str = "first"
    cache_teacher: bool = True
    transfer_data: str = "none"
    transfer_ratio: float = 1.0
    transfer_select: str = "random"
    transfer_pool: float = 4.0
    transfer_entity_share: float = 1.0
    text_field: str = "text"
    teacher_cache: str = "auto"
    quant_aware: bool = False
    quant_per_channel: bool = True
    quant_reduce_range: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require(bool(self.teacher.strip()), "teacher",
                "a fine-tuned NER model (runs:/<id>/model, models:/<name>@<alias>, or a folder)", self.teacher)
        require(self.temperature > 0, "temperature", "a positive number", self.temperature)
        for name in ("kd_weight", "ce_weight", "hidden_weight", "attention_weight"):
            require(getattr(self, name) >= 0, name, "a weight >= 0", getattr(self, name))
        require(self.kd_weight + self.ce_weight + self.hidden_weight + self.attention_weight > 0, "kd_weight",
                "at least one loss weight > 0", self.kd_weight)
        require(self.hidden_loss in HIDDEN_LOSSES, "hidden_loss", f"one of {', '.join(HIDDEN_LOSSES)}",
                self.hidden_loss)
        require(self.word_pooling in POOLINGS, "word_pooling", f"one of {', '.join(POOLINGS)}", self.word_pooling)
        require(self.transfer_ratio >= 0, "transfer_ratio", "a number >= 0 (transfer sentences per training "
                "sentence)", self.transfer_ratio)
        require(bool(self.transfer_data.strip()) and all(part.strip() for part in self.transfer_data.split(",")),
                "transfer_data", "'none', or comma-separated sources: 'augment', an NER corpus or a text corpus",
                self.transfer_data)
        require(self.transfer_select in TRANSFER_SELECTIONS, "transfer_select",
                f"one of {', '.join(TRANSFER_SELECTIONS)}", self.transfer_select)
        require(0 <= self.transfer_entity_share <= 1, "transfer_entity_share", "a share in [0, 1] (of the transfer "
                "sentences chosen for entity words; the others drawn at random)", self.transfer_entity_share)
        require(self.transfer_pool >= 1, "transfer_pool", "a number >= 1 (candidates drawn per transfer sentence "
                "kept by transfer_select=entities)", self.transfer_pool)
        require(all(part.strip() for part in self.teacher.split(",")), "teacher",
                "one model reference, or several separated by commas (an ensemble)", self.teacher)
        require(bool(self.teacher_cache.strip()), "teacher_cache", "'auto' or a folder", self.teacher_cache)
        require(not (self.attention_weight > 0 and self.cache_teacher), "cache_teacher",
                "false when attention_weight > 0 (attention maps are not cached)", self.cache_teacher)

    @property
    def teachers(self) -> list[str]:
        """The teacher references (more than one: an ensemble)."""
        return [part.strip() for part in self.teacher.split(",")]


def transfer_candidates(config: Config, data: NerData, pool: float = 1.0) -> list[list[list[str]]]:
    """Per comma-separated source of ``transfer_data``, its sentences (words): ``pool`` x
    ``transfer_ratio`` x (training sentences), never one of the validation/test sentences of ``data``
    and never one an earlier source gave. ``augment``: training sentences with swapped entity mentions;
    an NER corpus: the words of its train split; anything else: raw text
    (:func:`findistill.data.text.word_sentences`), split into words as the served model splits them.
    With ``pool`` > 1 they are the candidates :func:`select_by_teacher` chooses from."""
    train = data.splits["train"]
    n = round(pool * config.transfer_ratio * len(train))
    if config.transfer_data == "none" or n == 0:
        return []
    held_out: list[Sentence] = data.splits.get("validation", []) + data.splits.get("test", [])
    groups: list[list[list[str]]] = []
    earlier: set[str] = set()  # the sentences of the sources before this one
    for source in (part.strip() for part in config.transfer_data.split(",")):
        if source == "augment":
            picked = select_transfer(swap_mentions(train, n, config.seed), n, config.seed, held_out)
        else:
            path = localize(source)
            candidates = word_sentences(path, text_field=config.text_field, max_lines=20 * n, seed=config.seed)
            picked = select_transfer(candidates, n, config.seed, held_out)
            if not picked:
                raise DataError("gives no usable transfer sentence (all empty or in the evaluation splits)", path)
        groups.append([words for words in picked if sentence_key(words) not in earlier])
        earlier.update(sentence_key(words) for words in picked)
    return groups


def load_transfer_set(config: Config, data: NerData) -> list[list[str]]:
    """The transfer set's sentences (words), drawn at random: :func:`transfer_candidates`, every source's
    in turn."""
    return [words for group in transfer_candidates(config, data) for words in group]


def select_by_teacher(config: Config, data: NerData, groups: list[list[list[str]]], teacher, tokenizer,
                      cache: Path, device: str, environment: str = "") -> list[list[str]]:
    """``transfer_select=entities``: of each source's candidates (``groups``, ``transfer_pool`` x its share),
    its share of sentences: ``transfer_entity_share`` of them those in which ``teacher`` tags the most
    words as entities (its cached word logits; ties keep the seeded draw's order), the others the first of
    the seeded draw (:func:`entity_choice`). Logs the entity words per sentence before and after. The logits
    are cached in ``cache`` under ``environment`` (:func:`teacher_targets`)."""
    n = round(config.transfer_ratio * len(data.splits["train"]))
    candidates = [words for group in groups for words in group]
    logits_only = LossSettings(word_pooling=config.word_pooling)
    outputs = teacher_targets([(teacher, tokenizer)], candidates, config.settings(), logits_only, cache, device,
                              environment)
    counts = entity_word_counts(outputs.logits, outputs.present, model_labels(teacher).index("O"))
    chosen: list[list[str]] = []
    kept: list[np.ndarray] = []
    for group, group_counts in zip(groups, np.split(counts, np.cumsum([len(g) for g in groups])[:-1]), strict=True):
        picked = entity_choice(group_counts, n, config.transfer_entity_share)
        chosen += [group[i] for i in picked]
        kept.append(group_counts[picked])
    chosen_counts = np.concatenate(kept)
    log_metrics({"transfer_pool_sentences": len(candidates), "transfer_pool_entity_words": float(counts.mean()),
                 "transfer_entity_words": float(chosen_counts.mean())})
    share = config.transfer_entity_share
    how = "the most entity words by the teacher" if share == 1 else \
        f"the most entity words by the teacher for {share:.0%} of them, a random sample for the rest"
    print(f"transfer set: {len(chosen):,} of {len(candidates):,} candidate sentences, {how} "
          f"({chosen_counts.mean():.2f} entity words per sentence, {counts.mean():.2f} in all candidates)")
    return chosen


def teacher_cache_dir(config: Config, checkpoints: Path) -> Path:
    """Where cached teacher outputs go: ``teacher_cache``, or for ``auto`` a folder beside the
    checkpoint folders (``.findistill/teacher-outputs``: every run of any student on the same sentences
    with the same teacher reads them, in the same environment: ``env.*`` fingerprint), or the checkpoint
    folder itself when that was given."""
    if config.teacher_cache != "auto":
        return Path(config.teacher_cache)
    if config.checkpoint_dir != "auto":
        return checkpoints
    return checkpoints.parent.parent / "teacher-outputs"


def _epoch_done(metrics: dict[str, float], epoch: int, hook: Callable[[dict[str, float], int], None] | None) -> None:
    log_metrics(metrics, step=epoch)
    if hook is not None:
        hook(metrics, epoch)


def run(config: Config, on_epoch: Callable[[dict[str, float], int], None] | None = None) -> str:
    """Distil ``teacher`` into a student; log the loss components and validation F1 per epoch, the student
    (``runs:/<id>/model``) and its evaluation with resource metrics.

    ``on_epoch(metrics, epoch)`` is called after each epoch's metrics are logged (``search`` reports
    them to its trial, which may stop the training by raising)."""
    device = training_device(config)
    data = load_stage_data(config)
    teacher_dirs = [localize_model(ref) for ref in config.teachers]
    teacher_dir = teacher_dirs[0]
    teacher = load_token_classifier(teacher_dir, trust_remote_code=config.trust_remote_code)
    labels = model_labels(teacher)
    # the mistakes that need no training to find end here, before any run is opened
    check_label_compatibility(labels, data.labels, f"teacher {config.teachers[0]} vs data {config.data}")
    members = [(load_token_classifier(folder, trust_remote_code=config.trust_remote_code),
                load_tokenizer(folder, trust_remote_code=config.trust_remote_code)) for folder in teacher_dirs[1:]]
    check_labels(config.teachers, [teacher, *(member for member, _ in members)], "teacher")
    if members and not config.cache_teacher:
        raise ConfigError("parameter 'cache_teacher': an ensemble teacher needs cached outputs (true)")
    n_teacher = len(layer_list(teacher))
    kept = None
    if config.student_init == "teacher":  # another init model's depth is checked when it is loaded
        kept = select_layers(n_teacher, config.student_layers, config.layer_selection)
    with as_parameters():
        map_layers(len(kept) if kept else n_teacher, n_teacher, config.hidden_layers, kept)
    pool = config.transfer_pool if config.transfer_select == "entities" else 1.0
    groups = transfer_candidates(config, data, pool)
    with stage_run("distill", config, run_name="distill") as run:
        log_data(data)
        teacher_tokenizer = load_tokenizer(teacher_dir, trust_remote_code=config.trust_remote_code)
        checkpoints = checkpoint_path(config, "distill")
        environment = fingerprint(environment_tags())  # the teacher-output cache's key
        if groups and pool > 1:
            transfer = select_by_teacher(config, data, groups, teacher, teacher_tokenizer,
                                         teacher_cache_dir(config, checkpoints), device, environment)
        else:
            transfer = [words for group in groups for words in group]
        if config.student_init == "teacher":
            source, source_tokenizer = teacher, teacher_tokenizer
        else:
            init_dir = localize_model(config.student_init)
            source_tokenizer = load_tokenizer(init_dir, trust_remote_code=config.trust_remote_code)
            set_seed(config.seed)
            source = load_token_classifier(init_dir, labels, trust_remote_code=config.trust_remote_code)
        student, student_tokenizer = make_student(source, source_tokenizer, config, seed=config.seed,
                                                  text=[s.tokens for s in data.splits["train"]] + transfer)
        losses = LossSettings(
            temperature=config.temperature, kd_weight=config.kd_weight, ce_weight=config.ce_weight,
            hidden_weight=config.hidden_weight, hidden_loss=config.hidden_loss,
            attention_weight=config.attention_weight, word_pooling=config.word_pooling,
            layer_map=map_layers(student.config.num_hidden_layers, teacher.config.num_hidden_layers,
                                 config.hidden_layers, kept),
        )
        if members:
            mlflow.set_tag("findistill.ensemble_size", str(len(config.teachers)))
            print(f"ensemble teacher: the mean of {len(config.teachers)} teachers' word logits")
        mlflow.set_tag("findistill.layer_map", ",".join(f"{s}:{t}" for s, t in losses.layer_map))
        scheme = QuantScheme(config.quant_per_channel, config.quant_reduce_range) if config.quant_aware else None
        if scheme is not None:
            print(f"quantization-aware training: {scheme.describe()} simulated")
            mlflow.set_tag("findistill.quant_aware", "onnx-int8")
        if transfer:
            print(f"transfer set: {len(transfer)} sentences from {config.transfer_data} (teacher labels only)")
        tag_initial_weights(student, teacher=teacher)
        summary = distill_student(
            student, student_tokenizer, teacher, teacher_tokenizer, data.splits["train"], data.splits["validation"],
            labels, config.settings(), losses, checkpoints, transfer=transfer, extra_teachers=members,
            teacher_cache=teacher_cache_dir(config, checkpoints), cache_teacher=config.cache_teacher,
            cache_environment=environment,
            device=device, on_epoch=lambda metrics, epoch: _epoch_done(metrics, epoch, on_epoch),
            quant_scheme=scheme,
        )
        del teacher, source, members
        if "teacher_targets_sha256" in summary:
            mlflow.set_tag("findistill.teacher_targets_sha256", summary.pop("teacher_targets_sha256"))
        finish_training(student, student_tokenizer, data, config, summary, checkpoints, device, role="student")
        return run.info.run_id
