"""``adapt``: Masked-LM continued pre-training (DAPT, whole-word masking) of a teacher or student on
domain text, or with teacher= general distillation on general_data; early stopping on held-out loss;
logs held-out MLM loss and pseudo-perplexity (DAPT) or hidden-state loss (general distillation)
before/after and the adapted encoder (runs:/<id>/model).

Without ``teacher``: DAPT. ``model`` (a teacher, a student: ``student_layers``/``tokenizer``, or
an earlier ``adapt`` result) continues masked-LM training with whole-word masks on domain text:
the train split of ``data`` and/or ``text_data``. With a new ``tokenizer`` the transferred
embeddings are trained together with the layers, which aligns them. The masked-LM loss and
pseudo-perplexity on held-out domain text (the validation split of ``data``) are logged before and
after; the epoch with the lowest held-out loss is kept (``patience``).

With ``teacher``: general distillation, the first "distill" of Distill-Adapt-Distill. The student
(``model`` cut by the student spec) learns ``teacher``'s word-pooled hidden states on
``general_data`` (or on the domain text when there is none); the held-out measure is the same
hidden-state loss on the held-out domain text.

The result is logged as ``runs:/<id>/model`` (a fill-mask pyfunc whose Hugging Face folder
``finetune`` and ``distill`` take as ``model``, ``student_init`` or ``teacher``).
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
from transformers import set_seed

from findistill.config import require
from findistill.costs.size import count_parameters, model_size_mb
from findistill.data.text import word_sentences
from findistill.models.loading import DEFAULT_TEACHER, load_encoder, load_masked_lm, load_tokenizer
from findistill.models.students import map_layers, select_layers
from findistill.stages.common import (
    DataParams,
    StudentParams,
    checkpoint_path,
    leave_to_rank_zero,
    load_stage_data,
    make_student,
    model_depth,
    print_tracking_location,
    training_device,
)
from findistill.tracking.pyfunc import FillMaskPyfunc, log_hf_pyfunc
from findistill.tracking.runs import describe_run, localize, localize_model, log_metrics, scratch_dir, stage_run
from findistill.training.distill import LossSettings
from findistill.training.kd_losses import HIDDEN_LOSSES
from findistill.training.mlm import (
    MLM_PROBABILITY,
    general_distill,
    heldout_mlm_loss,
    pseudo_perplexity,
    train_mlm,
    warm_up_head,
)
from findistill.training.trainer import TrainSettings, remove_checkpoints

EpochLog = Callable[[dict[str, float], int], None]
FILL_MASK_EXAMPLES = ["Shares of the [MASK] rose after the company reported quarterly earnings ."]


@dataclass
class Config(StudentParams, TrainSettings, DataParams):
    """``adapt``: masked-LM continued pre-training on domain text (DAPT) or, with ``teacher``, general
    distillation on ``general_data``; held-out domain text measured before and after.

    Domain text: the train split of ``data`` (``use_train_split``) plus ``text_data`` (a text, JSONL
    or parquet file or folder; ``none``), at most ``max_text_lines`` lines of it (0: all). Held-out:
    the first ``eval_sentences`` sentences of the validation split of ``data``. ``mlm_probability``
    of the words are masked (whole words). General distillation: ``hidden_loss`` between the
    ``hidden_layers`` pairs (uniform, last, or ``1:2,2:4``), words pooled by their first piece.

    After each epoch the training objective is scored on the held-out text (``val_loss``: the
    masked-LM loss on masks drawn once from ``seed``, or the hidden-state loss against the
    teacher); training stops after ``patience`` epochs without improvement and the best epoch's
    weights are kept. Before and after training DAPT logs the held-out masked-LM loss and the
    pseudo-perplexity (sentences cut at ``eval_max_length`` sub-tokens: it costs one forward pass
    per sub-token). A model without a masked-LM head (a sentence encoder) gets a fresh one; with
    ``head_warmup_sentences`` > 0 that head alone is first trained for one epoch (at
    ``head_warmup_learning_rate``) on as many of the training sentences (seeded sample), so the
    'before' scores measure the encoder, not an untrained head. General distillation, which trains
    no language-model head, logs the held-out hidden-state loss (``heldout_hidden_loss``).
    """

    model: str = DEFAULT_TEACHER
    teacher: str = "none"
    general_data: str = "none"
    text_data: str = "none"
    text_field: str = "text"
    use_train_split: bool = True
    max_text_lines: int = 0
    mlm_probability: float = MLM_PROBABILITY
    hidden_loss: str = "mse"
    hidden_layers: str = "uniform"
    head_warmup_sentences: int = 0
    head_warmup_learning_rate: float = 1e-3
    eval_sentences: int = 100
    eval_max_length: int = 64
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-4
    max_length: int = 128
    device: str = "auto"
    checkpoint_dir: str = "auto"
    keep_checkpoints: bool = False
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        DataParams.__post_init__(self)
        StudentParams.__post_init__(self)
        self.check_settings()
        require(bool(self.model.strip()), "model", "an encoder reference", self.model)
        require(0 < self.mlm_probability < 1, "mlm_probability", "a fraction in (0, 1)", self.mlm_probability)
        require(self.hidden_loss in HIDDEN_LOSSES, "hidden_loss", f"one of {', '.join(HIDDEN_LOSSES)}",
                self.hidden_loss)
        require(self.eval_sentences >= 1, "eval_sentences", "an integer >= 1", self.eval_sentences)
        require(self.eval_max_length >= 8, "eval_max_length", "an integer >= 8", self.eval_max_length)
        require(self.embedding_rank == 0, "embedding_rank", "0 here: adapt trains a masked-LM whose output layer "
                "is tied to the word embeddings; factorise in finetune or distill", self.embedding_rank)
        require(self.head_warmup_sentences >= 0, "head_warmup_sentences", "0 (no warm-up) or a sentence count",
                self.head_warmup_sentences)
        require(self.head_warmup_learning_rate > 0, "head_warmup_learning_rate", "a positive learning rate",
                self.head_warmup_learning_rate)
        require(self.max_text_lines >= 0, "max_text_lines", "0 (all) or a positive count", self.max_text_lines)
        require(self.use_train_split or self.text_data != "none" or self.general_data != "none", "text_data",
                "a text corpus when use_train_split is false (there is no training text otherwise)", self.text_data)

    @property
    def distilling(self) -> bool:
        return self.teacher != "none"


def training_text(config: Config, data) -> tuple[list[list[str]], str]:  # noqa: ANN001
    """(sentences to train on, a description of where they come from)."""
    if config.distilling and config.general_data != "none":
        general = word_sentences(localize(config.general_data), text_field=config.text_field,
                                 max_lines=config.max_text_lines)
        return general, config.general_data
    sentences, sources = [], []
    if config.use_train_split:
        sentences += [s.tokens for s in data.splits["train"]]
        sources.append(f"train split of {config.data}")
    if config.text_data != "none":
        sentences += word_sentences(localize(config.text_data), text_field=config.text_field,
                                    max_lines=config.max_text_lines)
        sources.append(config.text_data)
    return sentences, " + ".join(sources)


def _measure(model, tokenizer, heldout, config: Config, device: str) -> dict[str, float]:  # noqa: ANN001
    started = time.perf_counter()
    scores = pseudo_perplexity(model, tokenizer, heldout, max_length=config.eval_max_length, device=device)
    loss = heldout_mlm_loss(model, tokenizer, heldout, max_length=config.eval_max_length,
                            mlm_probability=config.mlm_probability, seed=config.seed, device=device)
    return {"heldout_pppl_word": scores["pppl_word"], "heldout_pppl_token": scores["pppl_token"],
            "heldout_mlm_loss": loss, "heldout_words": scores["words"],
            "heldout_seconds": time.perf_counter() - started}


def _summary_metrics(summary: dict, sentences: list) -> dict[str, float]:
    """The training summary's numbers (a best epoch only when held-out text chose one)."""
    keys = ("epochs_run", "train_seconds", "train_examples", "best_epoch", "best_val_loss")
    return {**{k: summary[k] for k in keys if summary.get(k) is not None}, "train_sentences": len(sentences)}


def _dapt(model, tokenizer, sentences: list, heldout: list, config: Config, device: str, checkpoints: Path,
          log_epoch: EpochLog, fresh_head: bool) -> dict:
    """Masked-LM training with held-out masked-LM loss and pseudo-perplexity before and after (a fresh
    LM head warmed up first when ``head_warmup_sentences`` asks)."""
    if fresh_head and config.head_warmup_sentences > 0:
        chosen = random.Random(config.seed).sample(sentences, min(config.head_warmup_sentences, len(sentences)))
        print(f"warming up the fresh masked-LM head alone on {len(chosen):,} sentences (encoder frozen)")
        warm = warm_up_head(model, tokenizer, chosen, dataclasses.replace(config.settings(),
                            learning_rate=config.head_warmup_learning_rate), checkpoints / "head-warmup",
                            mlm_probability=config.mlm_probability, device=device)
        log_metrics({"head_warmup_sentences": len(chosen), "head_warmup_seconds": warm["train_seconds"]})
    before = _measure(model, tokenizer, heldout, config, device)
    log_metrics({f"{k}_before": v for k, v in before.items() if k != "heldout_words"})
    print(f"held-out ({len(heldout)} validation sentences) before: pseudo-perplexity/word "
          f"{before['heldout_pppl_word']:.1f}, MLM loss {before['heldout_mlm_loss']:.3f}")
    summary = train_mlm(model, tokenizer, sentences, heldout, config.settings(), checkpoints,
                        mlm_probability=config.mlm_probability, device=device, on_epoch=log_epoch)
    after = _measure(model, tokenizer, heldout, config, device)
    ratio = after["heldout_pppl_word"] / before["heldout_pppl_word"]
    log_metrics({**after, **_summary_metrics(summary, sentences), "heldout_pppl_word_ratio": ratio})
    print(f"after: pseudo-perplexity/word {after['heldout_pppl_word']:.1f} (x{ratio:.2f}), "
          f"MLM loss {after['heldout_mlm_loss']:.3f}")
    return summary


def _general_distillation(model, tokenizer, teacher_dir: str, sentences: list, heldout: list, config: Config,
                          device: str, checkpoints: Path, log_epoch: EpochLog) -> dict:
    """Hidden-state distillation from the teacher with the held-out hidden-state loss before and after."""
    teacher = load_encoder(teacher_dir, trust_remote_code=config.trust_remote_code)
    teacher_tokenizer = load_tokenizer(teacher_dir, trust_remote_code=config.trust_remote_code)
    losses = LossSettings(kd_weight=0.0, ce_weight=0.0, hidden_weight=1.0, hidden_loss=config.hidden_loss,
                          layer_map=map_layers(model.config.num_hidden_layers, teacher.config.num_hidden_layers,
                                               config.hidden_layers))
    mlflow.set_tag("findistill.layer_map", ",".join(f"{s}:{t}" for s, t in losses.layer_map))
    summary = general_distill(model, tokenizer, teacher, teacher_tokenizer, sentences, config.settings(), losses,
                              checkpoints, heldout=heldout, device=device, on_epoch=log_epoch)
    log_metrics(_summary_metrics(summary, sentences))
    if "heldout_hidden_loss_after" in summary:  # absent when the held-out sentences gave no text
        before, after = summary["heldout_hidden_loss_before"], summary["heldout_hidden_loss_after"]
        log_metrics({"heldout_hidden_loss_before": before, "heldout_hidden_loss": after})
        print(f"held-out ({len(heldout)} validation sentences) {config.hidden_loss} hidden-state loss against "
              f"the teacher: {before:.4f} before, {after:.4f} after")
    return summary


def run(config: Config) -> str:
    """Adapt ``model``; log before/after held-out scores, per-epoch losses, the model."""
    device = training_device(config)
    data = load_stage_data(config)
    heldout = [s.tokens for s in data.splits["validation"][: config.eval_sentences]]
    sentences, source = training_text(config, data)  # a bad text path fails here, before the run
    model_dir = localize_model(config.model)
    teacher_dir = localize_model(config.teacher) if config.distilling else None
    if teacher_dir is not None:  # a bad layer map or depth ends here, before the run opens
        n_model = model_depth(model_dir)
        depth = len(select_layers(n_model, config.student_layers or n_model, config.layer_selection))
        map_layers(depth, model_depth(teacher_dir), config.hidden_layers)
    with stage_run("adapt", config, run_name="adapt general-kd" if config.distilling else "adapt mlm") as run:
        tokenizer = load_tokenizer(model_dir, trust_remote_code=config.trust_remote_code)
        set_seed(config.seed)
        model, fresh_head = load_masked_lm(model_dir, trust_remote_code=config.trust_remote_code)
        mlflow.set_tags({"findistill.adapt_mode": "general-distillation" if config.distilling else "dapt",
                         "findistill.mlm_head_fresh": str(fresh_head).lower(), "findistill.train_text": source})
        if fresh_head and not config.distilling:
            print(f"note: {config.model} has no masked-LM head; a fresh one is trained" + (
                " (the 'before' pseudo-perplexity is that of an untrained head; head_warmup_sentences trains it "
                "first)" if config.head_warmup_sentences == 0 else ""))
        if config.is_student():
            model, tokenizer = make_student(model, tokenizer, config, seed=config.seed)
        checkpoints = checkpoint_path(config, "adapt")
        log_epoch = lambda metrics, epoch: log_metrics(metrics, step=epoch)  # noqa: E731
        print(f"training text: {len(sentences):,} sentences from {source}")
        if teacher_dir is not None:
            summary = _general_distillation(model, tokenizer, teacher_dir, sentences, heldout, config, device,
                                            checkpoints, log_epoch)
        else:
            summary = _dapt(model, tokenizer, sentences, heldout, config, device, checkpoints, log_epoch,
                            fresh_head)
        if not leave_to_rank_zero(model, device):
            return ""
        if summary["resumed_from"]:
            mlflow.set_tag("findistill.resumed_from", summary["resumed_from"])
        with scratch_dir("adapt") as tmp:
            hf_dir = Path(tmp) / "hf_model"
            model.save_pretrained(hf_dir, safe_serialization=True)
            tokenizer.save_pretrained(hf_dir)
            log_metrics({**count_parameters(model), "model_size_mb": model_size_mb(hf_dir)})
            model_uri = log_hf_pyfunc(hf_dir, FillMaskPyfunc(), max_length=config.max_length,
                                      example_texts=[t.replace("[MASK]", tokenizer.mask_token)
                                                     for t in FILL_MASK_EXAMPLES])
        describe_run(f"{'General distillation' if config.distilling else 'Masked-LM adaptation'} of {config.model} "
                     f"on {len(sentences):,} sentences from {source}; best held-out loss "
                     f"{summary.get('best_val_loss', float('nan')):.4f} (epoch {summary.get('best_epoch', '?')}).")
        if not config.keep_checkpoints:
            remove_checkpoints(checkpoints)
        print(f"model URI: {model_uri}")
        print_tracking_location()
        return run.info.run_id
