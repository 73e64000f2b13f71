"""``finetune``: Fine-tune an encoder for NER (the teacher; with student_layers/tokenizer the no-KD
student baseline); logs per-epoch curves, the model (runs:/<id>/model), entity F1 and resource
metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import set_seed

from findistill.models.loading import DEFAULT_TEACHER, load_token_classifier, load_tokenizer
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
from findistill.tracking.runs import localize_model, log_metrics, stage_run
from findistill.training.trainer import train_token_classifier


@dataclass
class Config(TrainingStageParams):
    """``finetune``: train a token classifier (the teacher, or with a student spec the no-KD student
    baseline) and evaluate it with resource metrics."""

    model: str = DEFAULT_TEACHER


def run(config: Config) -> str:
    """Fine-tune ``model`` on ``data``; log per-epoch curves, the model (``runs:/<id>/model``) and its evaluation."""
    device = training_device(config)
    data = load_stage_data(config)
    with stage_run("finetune", config, run_name="finetune" if config.is_student() else "finetune teacher") as run:
        log_data(data)
        model_dir = localize_model(config.model)
        tokenizer = load_tokenizer(model_dir, trust_remote_code=config.trust_remote_code)
        set_seed(config.seed)  # the new NER head is initialised here, before the Trainer seeds itself
        model = load_token_classifier(model_dir, data.labels, trust_remote_code=config.trust_remote_code)
        if config.is_student():
            model, tokenizer = make_student(model, tokenizer, config, seed=config.seed,
                                            text=[s.tokens for s in data.splits["train"]])
        checkpoints = checkpoint_path(config, "finetune")
        tag_initial_weights(model)
        summary = train_token_classifier(
            model, tokenizer, data.splits["train"], data.splits["validation"], data.labels, config.settings(),
            checkpoints, on_epoch=lambda metrics, epoch: log_metrics(metrics, step=epoch), device=device,
        )
        finish_training(model, tokenizer, data, config, summary, checkpoints, device,
                        role="student" if config.is_student() else "teacher")
        return run.info.run_id
