"""``quantize``: Turn a logged model into a faster inference variant (ONNX Runtime fp32, ONNX Runtime
dynamic int8, PyTorch dynamic int8), check its entity F1 against its fp32 source, and log it as a
pyfunc model (runs:/<id>/model) with the resource metrics of every evaluation.

The variant's F1 is compared with the source's on ``guard_split`` (validation by default: the
decision to keep a variant is a selection, made without the test split) and logged as
``f1_delta_vs_source``; a variant that loses more than ``max_f1_drop`` is refused (the run fails
with that reason, nothing is logged as a model or registered) unless ``force=true``. Then both are
scored on ``eval_split`` (``<split>_f1`` and ``<split>_f1_delta_vs_source``) and the variant's
costs are measured in a fresh process, as ``evaluate`` measures them. Tags name the variant, its
runtime and its source model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import mlflow

from findistill.config import require
from findistill.costs.size import count_parameters
from findistill.data.corpus import SPLITS
from findistill.evaluation.predict import evaluate_ner
from findistill.models.loading import load_token_classifier, load_tokenizer
from findistill.runtimes.variants import (
    VARIANTS,
    QualityError,
    VariantError,
    load_inference_model,
    variant_of,
    write_variant,
)
from findistill.stages.common import (
    EXAMPLE_TEXTS,
    DataParams,
    check_source_splits,
    load_stage_data,
    log_evaluation,
    print_tracking_location,
    result_line,
    shape_tags,
)
from findistill.tracking.pyfunc import log_ner_model
from findistill.tracking.registry import register, version_tags
from findistill.tracking.runs import describe_run, localize_model, log_json, log_metrics, scratch_dir, stage_run


@dataclass
class Config(DataParams):
    """``quantize``: an inference variant of a model (ONNX Runtime fp32/int8, PyTorch int8), its F1 against
    the source and its costs."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("model",)  # declared without a default in MLproject

    model: str = ""
    variant: str = "onnx-int8"
    per_channel: bool = True
    reduce_range: bool = False
    guard_split: str = "validation"
    max_f1_drop: float = 0.01
    force: bool = False
    eval_split: str = "test"
    batch_size: int = 32
    max_length: int = 256
    measure_resources: bool = True
    registered_model_name: str = ""
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require(bool(self.model.strip()), "model", "a model (runs:/<id>/model, models:/<name>@<alias>, a folder)",
                self.model)
        require(self.variant in VARIANTS, "variant", f"one of {', '.join(VARIANTS)}", self.variant)
        for name in ("guard_split", "eval_split"):
            require(getattr(self, name) in SPLITS, name, f"one of {SPLITS}", getattr(self, name))
        require(0.0 <= self.max_f1_drop <= 1.0, "max_f1_drop",
                "an F1 difference between 0 and 1 (0.01 = one point)", self.max_f1_drop)
        require(self.batch_size >= 1, "batch_size", "a batch size >= 1", self.batch_size)
        require(8 <= self.max_length <= 4096, "max_length", "between 8 and 4096 sub-tokens", self.max_length)


def run(config: Config) -> str:
    """Write ``variant`` of ``model``, guard its F1, evaluate it with resources, log it (and register it)."""
    variant = VARIANTS[config.variant]
    data = load_stage_data(config)
    with stage_run("quantize", config, run_name=f"quantize {config.variant}") as run:
        check_source_splits(config.model, config)
        source_dir = localize_model(config.model)
        made_from, info = variant_of(source_dir)
        if made_from.name != "pytorch":
            raise VariantError(f"model: {config.model} is already a {made_from.name} variant; quantize the model it "
                               f"was made from ({info.get('source', 'see its runtime.json')})")
        tokenizer = load_tokenizer(source_dir, trust_remote_code=config.trust_remote_code)
        source = load_token_classifier(source_dir, trust_remote_code=config.trust_remote_code)
        mlflow.set_tags({"findistill.variant": variant.name, "findistill.runtime": variant.label,
                         "findistill.source_model": config.model, "findistill.role": "quantized",
                         **shape_tags(source, tokenizer)})
        with scratch_dir("variant") as tmp:
            folder = Path(tmp) / "hf_model"
            print(f"writing the {variant.name} variant of {config.model}: {variant.description}")
            record = write_variant(source, tokenizer, variant.name, folder, source=config.model,
                                   parameters=count_parameters(source), per_channel=config.per_channel,
                                   reduce_range=config.reduce_range)
            log_json(record, "variant/runtime.json")
            model = load_inference_model(folder, trust_remote_code=config.trust_remote_code)
            verdict = _guard(config, source, model, tokenizer, data)
            model_uri = log_ner_model(folder, max_length=config.max_length, example_texts=EXAMPLE_TEXTS)
            metrics = log_evaluation(
                model, tokenizer, data, config.eval_split, batch_size=config.batch_size,
                max_length=config.max_length, device="cpu", measure=config.measure_resources, model_dir=str(folder),
            )
            if config.eval_split != config.guard_split:
                source_f1 = _f1(source, tokenizer, data, config.eval_split, config)
                log_metrics({f"source_{config.eval_split}_f1": source_f1,
                             f"{config.eval_split}_f1_delta_vs_source": metrics[f"{config.eval_split}_f1"] - source_f1})
        describe_run(f"The {variant.name} variant ({variant.label}) of {config.model}, F1 guard "
                     f"{verdict} on {config.guard_split} "
                     f"of {data.name}. " + result_line(metrics, config.eval_split))
        if config.registered_model_name:
            version = register(model_uri, config.registered_model_name, tags=version_tags(run.info.run_id))
            print(f"registered {config.registered_model_name} version {version}")
        print(f"model URI: {model_uri}")
        print_tracking_location()
        return run.info.run_id


def _f1(model, tokenizer, data, split: str, config: Config) -> float:
    result = evaluate_ner(model, tokenizer, data.splits[split], batch_size=config.batch_size,
                          max_length=config.max_length)
    return float(result.scores["f1"])


def _guard(config: Config, source, model, tokenizer, data) -> str:
    """Log the variant's and the source's F1 on ``guard_split`` and ``f1_delta_vs_source`` (variant minus
    source); return the verdict (``passed``, ``forced``: also the tag ``findistill.f1_guard``), or raise
    QualityError when the variant loses more than ``max_f1_drop`` and ``force`` is off."""
    split = config.guard_split
    source_f1 = _f1(source, tokenizer, data, split, config)
    variant_f1 = _f1(model, tokenizer, data, split, config)
    delta = variant_f1 - source_f1
    log_metrics({f"source_{split}_f1": source_f1, f"{split}_f1": variant_f1, "f1_delta_vs_source": delta})
    print(f"{split} F1: source {source_f1:.4f}, {config.variant} {variant_f1:.4f} ({100 * delta:+.2f} points)")
    if delta >= -config.max_f1_drop:
        mlflow.set_tag("findistill.f1_guard", "passed")
        return "passed"
    if config.force:
        mlflow.set_tag("findistill.f1_guard", "forced")
        print(f"kept although it loses more than max_f1_drop={config.max_f1_drop} (force=true)")
        return "forced"
    reason = (f"{config.variant} loses {-100 * delta:.2f} F1 points on {split} against its source "
              f"({variant_f1:.4f} vs {source_f1:.4f}), more than max_f1_drop={config.max_f1_drop}; nothing was "
              f"logged as a model or registered (force=true keeps it)")
    mlflow.set_tags({"findistill.f1_guard": "refused", "findistill.fail_reason": reason})
    raise QualityError(reason)
