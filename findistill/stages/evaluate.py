"""``evaluate``: Entity-level P/R/F1 (seqeval, strict IOB2) of a model on a split, with resource metrics.

Any model the project logs is evaluated in the runtime it was saved for: a ``quantize`` variant runs
in ONNX Runtime or as PyTorch dynamic int8 (tag ``findistill.runtime``). Several comma-separated
models sharing a tokenizer and labels are evaluated as one ensemble (the mean of their logits).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import mlflow

from findistill.config import require
from findistill.costs.device import resolve_device
from findistill.costs.latency import is_cpu_only
from findistill.data.corpus import SPLITS
from findistill.models.ensemble import EnsembleClassifier, check_members
from findistill.models.loading import load_token_classifier, load_tokenizer
from findistill.runtimes.variants import load_inference_model
from findistill.stages.common import (
    DataParams,
    check_source_splits,
    load_stage_data,
    log_evaluation,
    print_tracking_location,
    result_line,
)
from findistill.tracking.runs import describe_run, localize_model, logged_model_id, short_ref, stage_run


@dataclass
class Config(DataParams):
    """``evaluate``: entity P/R/F1 of a model on a split, plus the resource metrics. ``model`` may list
    several models (comma-separated, same tokenizer and labels): their ensemble is evaluated, without
    resource metrics (parameter counts only)."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("model",)  # declared without a default in MLproject

    model: str = ""
    split: str = "test"
    batch_size: int = 32
    max_length: int = 256
    device: str = "auto"
    measure_resources: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        require(bool(self.model.strip()) and all(part.strip() for part in self.model.split(",")), "model",
                "a model (runs:/<id>/model, models:/<name>@<alias>, a folder), or several separated by commas",
                self.model)
        require(self.split in SPLITS, "split", f"one of {SPLITS}", self.split)
        require(self.batch_size >= 1, "batch_size", "a batch size >= 1", self.batch_size)
        require(8 <= self.max_length <= 4096, "max_length", "between 8 and 4096 sub-tokens", self.max_length)


def _evaluate_ensemble(config: Config, data, refs: list[str], device: str) -> dict[str, float]:  # noqa: ANN001
    folders = [localize_model(ref) for ref in refs]
    models = [load_token_classifier(folder) for folder in folders]
    tokenizers = [load_tokenizer(folder) for folder in folders]
    check_members(refs, models, tokenizers)
    mlflow.set_tag("findistill.ensemble_size", str(len(refs)))
    print(f"ensemble of {len(refs)} models: the mean of their logits (resource metrics are not measured)")
    return log_evaluation(EnsembleClassifier(models).eval(), tokenizers[0], data, config.split,
                          batch_size=config.batch_size, max_length=config.max_length, device=device, measure=False,
                          model_dir=None)


def run(config: Config) -> str:
    """Evaluate ``model`` on ``split``: ``<split>_f1`` etc., the seqeval report, predictions, resource metrics."""
    device = resolve_device(config.device)
    data = load_stage_data(config)
    refs = [part.strip() for part in config.model.split(",")]
    if len(refs) > 1:
        with stage_run("evaluate", config, run_name=f"evaluate ensemble of {len(refs)}") as run:
            metrics = _evaluate_ensemble(config, data, refs, device)
            describe_run(f"Evaluated the ensemble of {', '.join(refs)} (mean logits) on {config.split} of "
                         f"{data.name} ({len(data.splits[config.split]):,} sentences). "
                         + result_line(metrics, config.split))
            print_tracking_location()
            return run.info.run_id
    with stage_run("evaluate", config, run_name=f"evaluate {short_ref(config.model)}") as run:
        check_source_splits(config.model, config)
        model_dir = localize_model(config.model)
        tokenizer = load_tokenizer(model_dir)
        model = load_inference_model(model_dir)  # in the runtime the folder holds (a quantize variant too)
        if is_cpu_only(model):
            device = "cpu"  # ONNX Runtime's CPU provider, PyTorch's dynamic int8 kernels
        metrics = log_evaluation(
            model, tokenizer, data, config.split, batch_size=config.batch_size, max_length=config.max_length,
            device=device, measure=config.measure_resources, model_dir=model_dir if Path(model_dir).exists() else None,
            model_id=logged_model_id(config.model),
        )
        describe_run(f"Evaluated {config.model} on {config.split} of {data.name} "
                     f"({len(data.splits[config.split]):,} sentences). " + result_line(metrics, config.split))
        print_tracking_location()
        return run.info.run_id
