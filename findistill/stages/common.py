"""What the stages share: the parameter groups (data, student spec, training outputs), loading data and
tokenizers from references, building students, and finishing a training stage (evaluation, model,
registry).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow

from findistill.config import ConfigError, as_parameters, config_hash, require, to_dict
from findistill.costs.device import device_info, resolve_device
from findistill.costs.fresh_process import measure_saved_models
from findistill.costs.latency import format_resources_table
from findistill.costs.size import count_parameters
from findistill.data.corpus import SPLITS, DataError, NerData
from findistill.data.splits import load_ner_data
from findistill.data.stats import dataset_stats
from findistill.data.text import iter_text
from findistill.evaluation.predict import check_label_compatibility, evaluate_ner
from findistill.models.factorised import EMBEDDING_WEIGHTS, factorise_embeddings, token_frequencies
from findistill.models.loading import load_tokenizer, model_labels, resolve_model_path
from findistill.models.students import LAYER_SELECTIONS, build_student, narrow_feed_forward
from findistill.models.vocab_transfer import TRANSFER_METHODS
from findistill.runtimes.variants import PYTORCH_FP32, variant_of
from findistill.tracking.pyfunc import log_ner_model
from findistill.tracking.registry import register, version_tags
from findistill.tracking.runs import (
    corpus_name,
    describe_run,
    localize,
    localize_model,
    log_dataset_inputs,
    log_json,
    log_metrics,
    log_text,
    scratch_dir,
    split_dataset,
)
from findistill.training.distributed import (
    check_ranks_agree,
    is_main_process,
    resolve_precision,
    weights_digest,
    world_size,
)
from findistill.training.trainer import TrainSettings, remove_checkpoints

EXAMPLE_TEXTS = [
    "Harbor Point Capital Partners agreed to buy Lindqvist Freight AB for $ 1.2 billion , "
    "Chief Executive Officer Dana Whitfield told analysts in New York on Tuesday .",
]


@dataclass
class DataParams:
    """Where labelled NER data comes from and how it is split (shared by every stage that reads it)."""

    data: str = "sample"
    splits: str = "auto"
    scheme: str = "auto"
    seed: int = 42
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    max_sentences: int = 0
    split_blocks: int = 0

    def __post_init__(self) -> None:
        require(bool(self.data.strip()), "data", "a data folder/file, 'sample', or runs:/<id>/data", self.data)
        for name in ("validation_fraction", "test_fraction"):
            value = getattr(self, name)
            require(0.0 < value < 0.5, name, "a fraction between 0 and 0.5", value)
        require(self.max_sentences >= 0, "max_sentences", "0 (all) or a positive count", self.max_sentences)
        require(self.split_blocks >= 0, "split_blocks", "0 (by sentences) or a number of consecutive sentences",
                self.split_blocks)


@dataclass
class StudentParams:
    """A student derived from a model: ``student_layers`` of its layers (0: all) chosen by
    ``layer_selection`` (uniform, first, or 0-based indices such as ``0,2,5``), and its tokenizer
    (``same``, or a domain tokenizer such as ``runs:/<id>/tokenizer`` whose embeddings are built by
    ``vocab_transfer``: fvt, pvt or random). ``embedding_rank`` r > 0 factorises the word embeddings
    into vocabulary x r and r x hidden from their truncated SVD (ALBERT-style; after the vocabulary
    transfer, so it combines with a domain tokenizer; a model already factorised at a higher rank is
    factorised again); ``embedding_weights`` ``frequency`` chooses the
    factors' subspace by how often each token occurs in the stage's training text instead of
    ``uniform``ly over the vocabulary, with ``embedding_weights_text`` (a text corpus: file, folder or
    dataset) counted as well; ``embedding_exact_rows`` K > 0 (with ``frequency``) keeps the
    rows of the K most frequent tokens exact and spends the rank on the others. ``intermediate_size``
    n > 0 keeps n units of every feed-forward block, those with the largest weight norms (0: the
    model's own width)."""

    student_layers: int = 0
    layer_selection: str = "uniform"
    tokenizer: str = "same"
    vocab_transfer: str = "fvt"
    embedding_rank: int = 0
    embedding_weights: str = "uniform"
    embedding_exact_rows: int = 0
    embedding_weights_text: str = "none"
    intermediate_size: int = 0

    def __post_init__(self) -> None:
        require(self.student_layers >= 0, "student_layers", "0 (all the model's layers) or a depth >= 1",
                self.student_layers)
        require(bool(self.tokenizer.strip()), "tokenizer", "'same' or a tokenizer reference", self.tokenizer)
        require(self.vocab_transfer in TRANSFER_METHODS, "vocab_transfer", f"one of {', '.join(TRANSFER_METHODS)}",
                self.vocab_transfer)
        require(self.embedding_rank >= 0, "embedding_rank", "0 (a plain embedding matrix) or a rank >= 1",
                self.embedding_rank)
        require(self.embedding_weights in EMBEDDING_WEIGHTS, "embedding_weights",
                f"one of {', '.join(EMBEDDING_WEIGHTS)}", self.embedding_weights)
        require(self.embedding_weights == "uniform" or self.embedding_rank > 0, "embedding_weights",
                "uniform unless embedding_rank factorises the embeddings", self.embedding_weights)
        require(self.embedding_exact_rows == 0 or (self.embedding_exact_rows > 0 and self.embedding_rank > 0
                                                    and self.embedding_weights == "frequency"),
                "embedding_exact_rows", "0, or a row count >= 1 with embedding_rank > 0 and "
                "embedding_weights=frequency (the counts choose the rows)", self.embedding_exact_rows)
        require(self.embedding_weights_text == "none" or self.embedding_weights == "frequency",
                "embedding_weights_text", "none unless embedding_weights=frequency (its tokens are counted "
                "into the frequencies)", self.embedding_weights_text)
        require(self.intermediate_size >= 0, "intermediate_size",
                "0 (the model's feed-forward width) or a width >= 1", self.intermediate_size)

    def is_student(self) -> bool:
        return (self.student_layers > 0 or self.tokenizer != "same" or self.layer_selection not in LAYER_SELECTIONS
                or self.embedding_rank > 0 or self.intermediate_size > 0)


@dataclass
class TrainingStageParams(StudentParams, TrainSettings, DataParams):
    """What every stage that trains a model shares (``finetune``, ``distill``): data, optimisation, the
    student spec, and where the result goes (evaluation split, device, checkpoints, registry)."""

    eval_split: str = "test"
    device: str = "auto"
    checkpoint_dir: str = "auto"
    keep_checkpoints: bool = False
    measure_resources: bool = True
    registered_model_name: str = ""
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        DataParams.__post_init__(self)
        StudentParams.__post_init__(self)
        self.check_settings()
        require(self.eval_split in SPLITS, "eval_split", f"one of {SPLITS}", self.eval_split)


def load_stage_data(params: DataParams) -> NerData:
    """Read ``params.data`` (a raw source or a prepared ``runs:/<id>/data``) into IOB2 splits, named after
    the corpus (:func:`corpus_name`)."""
    data = load_ner_data(
        localize(params.data), splits=params.splits, scheme=params.scheme, seed=params.seed,
        validation_fraction=params.validation_fraction, test_fraction=params.test_fraction,
        max_sentences=params.max_sentences, split_blocks=params.split_blocks,
    )
    data.name = corpus_name(params.data)
    return data


#: the parameters that decide which sentences of a corpus fall into which split
SPLIT_PARAMS = ("splits", "seed", "validation_fraction", "test_fraction", "max_sentences", "split_blocks")


def _same_value(logged: str, value) -> bool:
    try:
        return float(logged) == float(value)
    except ValueError:
        return logged == str(value)


def _same_data(logged: str, data: str) -> bool:
    if logged == data:
        return True
    return Path(logged).exists() and Path(data).exists() and Path(logged).resolve() == Path(data).resolve()


def check_source_splits(model: str, params: DataParams) -> str:
    """Warn when ``model`` (``runs:/<id>/...``) was trained on ``params.data`` cut into other splits: then
    this stage's validation (and test, with a test fraction) holds sentences the model trained on. Prints
    the warning, tags the run ``findistill.split_warning`` and returns it ("" when the splits agree,
    the model is not a run's or its run logged no data parameters)."""
    if not model.startswith("runs:/"):
        return ""
    logged = mlflow.get_run(model.removeprefix("runs:/").split("/")[0]).data.params
    if "data" not in logged or not _same_data(logged["data"], params.data):
        return ""
    differ = [name for name in SPLIT_PARAMS
              if name in logged and not _same_value(logged[name], getattr(params, name))]
    if not differ:
        return ""
    cuts = ", ".join(f"{name}={logged[name]} (here {getattr(params, name)})" for name in differ)
    warning = (f"model: {model} was trained on {params.data} split with {cuts}: this run's splits overlap its "
               f"training sentences; pass the same {', '.join(differ)}")
    print(f"warning: {warning}")
    mlflow.set_tag("findistill.split_warning", warning)
    return warning


def log_data(data: NerData) -> dict:
    """Log the splits as the run's dataset inputs, ``data_stats.json`` and the tags ``findistill.corpus``
    and ``findistill.validation_unit`` (how the validation part was cut: ``document``, ``block``,
    ``sentence`` or ``given``) in the active run; return the statistics."""
    log_dataset_inputs(data)
    stats = dataset_stats(data)
    log_json(stats, "data_stats.json")
    mlflow.set_tags({"findistill.corpus": data.name, "findistill.validation_unit": data.validation_unit})
    return stats


def log_evaluation(model, tokenizer, data: NerData, split: str, *, batch_size: int, max_length: int,
                    device: str, measure: bool, model_dir: str | None, model_id: str | None = None) -> dict[str, float]:
    """Evaluate on ``split`` and log ``<split>_f1`` etc., the report, and the resource metrics.

    The resource metrics are measured in a fresh Python process (``measure_saved_models``) on the
    split's sentences, from ``model_dir`` (a saved folder with the model and its tokenizer) or,
    when it is None, from a temporary copy of ``model`` and ``tokenizer``: so latency and
    ``peak_rss_mb`` describe inference alone, not this process (which may just have trained).
    The fresh process uses this process's torch thread count; the ``device.*`` tags describe it.
    Without ``measure``, only the parameter counts (``params_total``...) are logged beside the scores.
    The tag ``findistill.runtime`` names the runtime the latency is measured in (``pytorch-fp32``,
    ``onnxruntime-int8``...: the variant of ``model_dir``).
    The scores are linked to the split's dataset (a run input) and, with ``model_id``, to that logged
    model (otherwise to the model the run logged before, if any: see :func:`log_metrics`).
    """
    sentences = data.splits[split]
    runtime = variant_of(model_dir)[0] if model_dir is not None else PYTORCH_FP32
    mlflow.set_tag("findistill.runtime", runtime.label)
    check_label_compatibility(model_labels(model), data.labels, f"{data.files.get(split, split)}")
    result = evaluate_ner(model, tokenizer, sentences, batch_size=batch_size, max_length=max_length, device=device)
    metrics = {f"{split}_{k}": v for k, v in result.scores.items()}
    mlflow.set_tag("findistill.corpus", data.name)
    log_metrics(metrics, dataset=split_dataset(data, split), model_id=model_id)
    if not measure:  # counted here, without the fresh process (which counts them among the resources)
        counts = count_parameters(model)
        log_metrics(counts, model_id=model_id)
        metrics.update(counts)
    log_text(result.report, f"evaluation/{split}_report.txt")
    log_text(
        "\n\n".join(
            "\n".join(f"{w}\t{g}\t{p}" for w, g, p in zip(s.tokens, s.tags, pred))
            for s, pred in zip(sentences, result.predicted)
        ) + "\n",
        f"evaluation/{split}_predictions.conll",
    )
    print(f"\nEntity scores on {split} ({len(sentences)} sentences, strict IOB2):\n{result.report}")
    if measure:
        import torch

        model.to("cpu")  # leave the GPU's memory to the measuring process
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        # a model built from custom code ran here already; its saved copy needs the same code
        custom_code = bool(getattr(model.config, "auto_map", None))
        with scratch_dir("measure") as tmp:
            folder = model_dir
            if folder is None:
                folder = str(Path(tmp) / "model")
                model.save_pretrained(folder, safe_serialization=True)
                tokenizer.save_pretrained(folder)
            resources = measure_saved_models(
                {"model": folder}, [s.tokens for s in sentences], max_length=max_length, device=device,
                trust_remote_code=custom_code,
            )["model"]
        log_metrics(resources, model_id=model_id)
        mlflow.set_tags({f"device.{k}": v for k, v in device_info(device).items()})
        mlflow.set_tag("findistill.resources_measured_in", "fresh process")
        table = format_resources_table(resources)
        log_text(table, "evaluation/resources.md")
        print(table)
        metrics.update(resources)
    return metrics


def load_tokenizer_ref(ref: str, trust_remote_code: bool = False):
    """A fast tokenizer from a user's reference: ``runs:/<id>/tokenizer``, ``runs:/<id>/model``,
    ``models:/<name>@<alias>``, a folder, ``packaged:...`` or a Hub id."""
    return load_tokenizer(localize_model(ref), trust_remote_code=trust_remote_code)


#: config attribute holding a student's :func:`student_label`, which a student trained further keeps
LABEL_KEY = "findistill_student"


def make_student(model, tokenizer, spec: StudentParams, seed: int = 0,
                 text: Sequence[Sequence[str]] | None = None):
    """``build_student`` from a stage's student parameters; logs the spec as tags, adds its
    :func:`student_label` to the run's name and the config (a student that ``model`` already is, kept as it
    is, keeps its label) and prints it. ``text`` (sentences as words): what the
    student will be trained on, whose token counts weight the factorisation for
    ``embedding_weights=frequency``."""
    new_tokenizer = None if spec.tokenizer == "same" else load_tokenizer_ref(spec.tokenizer)
    student, student_tokenizer, layers = build_student(
        model, tokenizer, n_layers=spec.student_layers, selection=spec.layer_selection, tokenizer=new_tokenizer,
        vocab_transfer=spec.vocab_transfer, seed=seed,
    )
    mlflow.set_tags({"findistill.student_layers_from": ",".join(map(str, layers)),
                     "findistill.student_vocab_size": str(len(student_tokenizer))})
    narrowed = ""
    if spec.intermediate_size > 0:
        with as_parameters():
            ffn = narrow_feed_forward(student, spec.intermediate_size)
        narrowed = (f"; feed-forward blocks narrowed to {spec.intermediate_size} units "
                    f"({ffn['feed_forward_params_before'] / 1e6:.2f}M -> {ffn['feed_forward_params_after'] / 1e6:.2f}M "
                    "parameters)")
    factorised = ""
    if spec.embedding_rank > 0:
        weights = None
        if spec.embedding_weights == "frequency":
            if not text:
                raise ConfigError("parameter 'embedding_weights': frequency needs the training text to count "
                                  "tokens in, and this stage has none")
            rows = student.get_input_embeddings().weight.shape[0]
            weights = token_frequencies(student_tokenizer, text, rows)
            if spec.embedding_weights_text != "none":
                try:  # a missing, empty or malformed corpus fails naming the parameter
                    weights += token_frequencies(student_tokenizer,
                                                 iter_text(localize(spec.embedding_weights_text)), rows)
                except DataError as err:
                    raise ConfigError(f"parameter 'embedding_weights_text': {err}") from err
        with as_parameters():
            svd = factorise_embeddings(student, spec.embedding_rank, weights, spec.embedding_exact_rows)
        log_metrics({k: svd[k] for k in ("embedding_svd_error", "embedding_weighted_error") if k in svd}
                    | ({"embedding_weight_tokens": float(weights.sum())} if weights is not None else {}))
        counted = f" (with {spec.embedding_weights_text})" if spec.embedding_weights_text != "none" else ""
        weighted = (f", {svd['embedding_weighted_error']:.3f} weighted by the frequencies of "
                    f"{int(weights.sum()):,} tokens{counted}" if weights is not None else "")
        weighted += " on the other rows" if spec.embedding_exact_rows else ""
        exact = f", the {spec.embedding_exact_rows:,} most frequent rows exact" if spec.embedding_exact_rows else ""
        factorised = (f"; word embeddings factorised at rank {spec.embedding_rank}{exact} "
                      f"({svd['embedding_params_before'] / 1e6:.2f}M -> {svd['embedding_params_after'] / 1e6:.2f}M "
                      f"parameters, relative SVD error {svd['embedding_svd_error']:.3f}{weighted})")
    inherited = getattr(model.config, LABEL_KEY, "")
    if inherited and new_tokenizer is None and spec.embedding_rank == spec.intermediate_size == 0 \
            and len(layers) == model.config.num_hidden_layers:
        label = inherited  # a student trained further, as it was built
    else:
        label = student_label(len(layers), None if new_tokenizer is None else len(student_tokenizer),
                              spec.embedding_rank, spec.intermediate_size, spec.embedding_weights == "frequency",
                              spec.embedding_exact_rows, spec.embedding_weights_text != "none")
    setattr(student.config, LABEL_KEY, label)
    name = mlflow.get_run(mlflow.active_run().info.run_id).data.tags.get("mlflow.runName", "")
    mlflow.set_tag("mlflow.runName", f"{name} {label}".strip())
    how = "same tokenizer" if new_tokenizer is None else f"{spec.vocab_transfer} transfer"
    print(f"student: layers {layers} of {model.config.num_hidden_layers} kept, vocabulary "
          f"{len(student_tokenizer):,} ({how}){narrowed}{factorised}")
    return student, student_tokenizer


def student_label(depth: int, vocab_size: int | None, embedding_rank: int = 0, intermediate_size: int = 0,
                  weighted: bool = False, exact_rows: int = 0, corpus_counts: bool = False) -> str:
    """``s2-dom16k`` (2 layers, a 16k domain vocabulary), ``s3-same`` (3 layers, the model's tokenizer),
    ``s2-same-r64`` (embeddings factorised at rank 64; ``-r64w`` weighted by token frequency;
    ``-r96wc`` weighted by the frequencies counted on a text corpus too; ``-r72w-x2000`` with 2,000 rows
    exact) or ``s4-same-r56-f768`` (feed-forward blocks of 768 units): what run names add for a student."""
    label = f"s{depth}-" + ("same" if vocab_size is None else f"dom{vocab_size / 1000:.0f}k")
    rank = f"-r{embedding_rank}{'w' if weighted else ''}{'c' if corpus_counts else ''}" if embedding_rank else ""
    rank += f"-x{exact_rows}" if exact_rows else ""
    return label + rank + (f"-f{intermediate_size}" if intermediate_size else "")


#: parameters that do not change what a training computes: a re-run that sets them differently still resumes
NOT_IN_CHECKPOINT_KEY = ("checkpoint_steps", "keep_checkpoints", "measure_resources", "registered_model_name",
                         "eval_split")


def checkpoint_path(config, stage: str) -> Path:
    """``checkpoint_dir``, or for ``auto`` a folder named by a hash of the config's training parameters (the
    same command resumes)."""
    if config.checkpoint_dir != "auto":
        return Path(config.checkpoint_dir)
    key = {k: v for k, v in to_dict(config).items() if k not in NOT_IN_CHECKPOINT_KEY}
    return Path(".findistill") / "checkpoints" / f"{stage}-{config_hash(key)}"


def training_device(config) -> str:
    """The device a training stage's ``device`` names (see :func:`resolve_device`), once its ``precision`` is
    known to run there: a mismatch ends the stage before any run opens."""
    device = resolve_device(config.device)
    resolve_precision(config.precision, device)
    return device


def leave_to_rank_zero(model, device: str) -> bool:
    """After training: every rank checks it holds the same weights (under ``torchrun``); True in rank 0, which
    then logs alone (tagged with the number of processes and the weights' SHA-256), False in the others."""
    digest = check_ranks_agree(model, device)
    if not is_main_process():
        return False
    mlflow.set_tags({"findistill.world_size": str(world_size()), "findistill.weights_sha256": digest})
    return True


def tag_initial_weights(model, **others) -> None:
    """Tag the active run with the SHA-256 of ``model``'s weights as training starts (``findistill.init_sha256``)
    and of ``others`` (``teacher=...`` -> ``findistill.teacher_sha256``): two runs with the same parameters that
    differ here started from different numbers (another machine's SVD, another checkpoint)."""
    mlflow.set_tags({"findistill.init_sha256": weights_digest(model),
                     **{f"findistill.{name}_sha256": weights_digest(other) for name, other in others.items()}})


def finish_training(model, tokenizer, data: NerData, config, summary: dict, checkpoints: Path, device: str, *,
                    role: str) -> str:
    """After training: log the summary and the model, evaluate it on ``config.eval_split`` (with resources;
    the scores are linked to the logged model), register it when asked (only now that everything is
    logged), describe the run, drop the checkpoints. Returns the model URI.

    Under ``torchrun`` every rank calls it: the ranks first check they hold the same weights, then all but
    rank 0 return ``""`` (rank 0 alone evaluates, logs and registers)."""
    if not leave_to_rank_zero(model, device):
        return ""
    mlflow.set_tag("findistill.precision", resolve_precision(config.precision, device))
    if summary["resumed_from"]:
        mlflow.set_tag("findistill.resumed_from", summary["resumed_from"])
        print(f"resumed from checkpoint {summary['resumed_from']}")
    log_metrics({k: v for k, v in summary.items() if k != "resumed_from" and v is not None})
    mlflow.set_tags({"findistill.role": role, **shape_tags(model, tokenizer)})
    with scratch_dir("model") as tmp:
        hf_dir = Path(tmp) / "hf_model"
        model.save_pretrained(hf_dir, safe_serialization=True)
        tokenizer.save_pretrained(hf_dir)
        model_uri = log_ner_model(hf_dir, max_length=config.max_length, example_texts=EXAMPLE_TEXTS)
        metrics = log_evaluation(
            model, tokenizer, data, config.eval_split, batch_size=32, max_length=config.max_length,
            device=device, measure=config.measure_resources, model_dir=str(hf_dir),
        )
    run_id = mlflow.active_run().info.run_id
    describe_run(f"{'Fine-tuned' if role == 'teacher' else 'Trained'} the {role} on {data.name} "
                 f"({len(data.splits['train']):,} training sentences). " + result_line(metrics, config.eval_split))
    if config.registered_model_name:
        version = register(model_uri, config.registered_model_name, tags=version_tags(run_id))
        print(f"registered {config.registered_model_name} version {version}")
    if not config.keep_checkpoints:
        remove_checkpoints(checkpoints)
    print(f"model URI: {model_uri}")
    print_tracking_location()
    return model_uri


def shape_tags(model, tokenizer) -> dict[str, str]:
    """``findistill.depth`` (transformer layers) and ``findistill.vocab_size`` of a model and its tokenizer."""
    return {"findistill.depth": str(model.config.num_hidden_layers), "findistill.vocab_size": str(len(tokenizer))}


def result_line(metrics: dict[str, float], split: str) -> str:
    """One sentence with a model's F1 on ``split`` and the costs in ``metrics`` that were measured."""
    parts = [f"{split} F1 {metrics[f'{split}_f1']:.4f}"] if f"{split}_f1" in metrics else []
    if "params_total" in metrics:
        parts.append(f"{metrics['params_total'] / 1e6:.1f}M parameters")
    if "model_size_mb" in metrics:
        parts.append(f"{metrics['model_size_mb']:.1f} MB")
    if "latency_cpu_b1_ms_p50" in metrics:
        parts.append(f"{metrics['latency_cpu_b1_ms_p50']:.1f} ms per sentence on CPU (batch 1, p50)")
    return (", ".join(parts) + ".") if parts else ""


def print_tracking_location() -> None:
    """Where the run was logged, and how to see it in the UI (its model-training view: the UI opens in its
    GenAI view unless told otherwise)."""
    uri = mlflow.get_tracking_uri()
    active = mlflow.active_run()
    page = f"#/experiments/{active.info.experiment_id}/runs?workflowType=machine_learning" if active else ""
    if uri.startswith(("http://", "https://")):
        print(f"\nTracking server: {uri}/{page}")
        return
    print(f"\nTracking store: {uri}\nOpen the UI:    mlflow ui --backend-store-uri {uri} --host 127.0.0.1, "
          f"then http://127.0.0.1:5000/{page}")


def model_depth(model_dir: str) -> int:
    """Number of transformer layers of a model reference, from its config alone."""
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(resolve_model_path(model_dir)).num_hidden_layers)


def split_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def safe_label(text: str) -> str:
    """A label usable inside metric names: letters, digits, '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "x"


def scalar_row(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if not isinstance(v, (list, dict))}
