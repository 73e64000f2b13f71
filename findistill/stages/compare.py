"""``compare``: Put the models of a study side by side (F1 and costs, Pareto fronts) in a table and an HTML dashboard.

Models come from the runs of experiments (``experiments``, narrowed by an MLflow ``filter``: every
finished run that logged a teacher, student or quantized model and its ``<split>_f1``; costs it did not
measure come from a later ``evaluate`` run of its model) or from
registered models (``registered_models``: every version, with the metrics its tags carry). Runs that
differ only in ``seed`` are one configuration (F1 mean ± sd). With ``remeasure=true`` the costs are
measured again, one model per configuration, side by side in one fresh process on ``split`` of
``data`` (default: the data of the first model's run), so that latencies taken in different sessions
do not decide the fronts. The dashboard is logged as ``compare/dashboard.html`` and written to
``<output_dir>/<title>.html``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from findistill.config import ConfigError, parse_params, require
from findistill.costs.device import resolve_device
from findistill.costs.fresh_process import measure_saved_models
from findistill.data.corpus import SPLITS
from findistill.reports.dashboard import write_dashboard
from findistill.reports.table import COSTS, FRONTS, Model, Row, group, mark_fronts, markdown, pareto_front, to_csv
from findistill.stages.common import DataParams, load_stage_data, safe_label, split_list
from findistill.tracking.registry import VERSION_METRICS
from findistill.tracking.runs import (
    describe_run,
    experiment_ids,
    localize_model,
    log_json,
    log_metrics,
    log_text,
    scratch_dir,
    stage_run,
)

#: roles of the runs that logged a model worth comparing
ROLES = ("teacher", "student", "quantized")
#: parameters that do not change the model a run trains (left out of a configuration's key)
NOT_CONFIGURATION = {"seed", "checkpoint_dir", "keep_checkpoints", "registered_model_name", "measure_resources",
                     "device", "trust_remote_code", "checkpoint_steps"}
#: at most this many tokenization plots are shown on the dashboard
MAX_IMAGES = 6


@dataclass
class Config:
    """``compare``: the models of experiments (or registered models) side by side, with their Pareto fronts."""

    experiments: str = ""
    filter: str = ""
    registered_models: str = ""
    split: str = "test"
    title: str = ""
    output_dir: str = "dashboards"
    max_runs: int = 1000
    remeasure: bool = False
    data: str = ""
    max_length: int = 256
    rounds: int = 2
    device: str = "cpu"

    def __post_init__(self) -> None:
        require(self.split in SPLITS, "split", f"one of {SPLITS}", self.split)
        require(self.max_runs >= 1, "max_runs", "a count >= 1", self.max_runs)
        require(self.max_length >= 8, "max_length", "a length in sub-tokens >= 8", self.max_length)
        require(self.rounds >= 1, "rounds", "a number of measuring rounds >= 1", self.rounds)
        require(not (self.registered_models and self.filter), "filter",
                "no filter with registered_models (a filter selects runs)", self.filter)


def experiment_ids_of(names: str) -> list[str]:
    """Experiment ids from names or ids (comma-separated); "" is the experiment this run is in."""
    if not names.strip():
        active = mlflow.active_run()
        current = active.info.experiment_id if active else os.environ.get("MLFLOW_EXPERIMENT_ID")
        return [current or "0"]
    return experiment_ids(split_list(names))


def _label(run) -> str:
    """The run's name without its seed (``retrain trial 14 s42 s2-dom16k`` -> ``retrain trial 14 s2-dom16k``);
    for a quantized model, its source's label and the variant (``distill s2-dom16k onnx-int8``)."""
    source = run.data.tags.get("findistill.source_model", "")
    if run.data.tags.get("findistill.role") == "quantized" and source.startswith("runs:/"):
        try:
            source_label = _label(mlflow.get_run(source.removeprefix("runs:/").split("/")[0]))
        except mlflow.exceptions.MlflowException:  # its source is in another store
            source_label = source
        return f"{source_label} {run.data.tags.get('findistill.variant', 'variant')}"
    name = run.data.tags.get("mlflow.runName", run.info.run_id[:8])
    seed = run.data.params.get("seed")
    return re.sub(rf"\s+s{re.escape(seed)}\b", "", name).strip() if seed else name


def models_from_runs(ids: list[str], filter_string: str, split: str, max_runs: int) -> list[Model]:
    """The models of the finished runs of ``ids`` matching ``filter_string`` that logged a model of one of
    :data:`ROLES` and ``<split>_f1``."""
    query = " and ".join(part for part in (filter_string.strip(), "attributes.status = 'FINISHED'") if part)
    try:
        runs = MlflowClient().search_runs(ids, query, max_results=max_runs, order_by=["attributes.start_time ASC"])
    except mlflow.exceptions.MlflowException as err:
        raise ConfigError(f"filter: MLflow cannot search runs with {filter_string!r}: "
                          f"{str(err).splitlines()[0]}") from err
    measured_later = _evaluated_costs(ids, split, max_runs)
    models = []
    for run in runs:
        role, metrics = run.data.tags.get("findistill.role"), run.data.metrics
        if role not in ROLES or f"{split}_f1" not in metrics:
            continue
        params = {k: v for k, v in run.data.params.items() if k not in NOT_CONFIGURATION}
        key = repr((run.info.experiment_id, role, run.data.tags.get("findistill.runtime"), sorted(params.items())))
        model = model_of_run(run, split, label=_label(run), key=key)
        model.costs = {**measured_later.get(f"runs:/{run.info.run_id}/model", {}),
                       **measured_later.get(f"models:/{run.data.tags.get('findistill.model_id')}", {}), **model.costs}
        models.append(model)
    return models


def model_of_run(run, split: str, *, label: str, key: str) -> Model:
    """The model a run logged, with the run's role, runtime, F1 on ``split`` (NaN when not measured), validation
    F1 (``best_val_f1`` of a training run stands in) and the costs it measured."""
    metrics, tags = run.data.metrics, run.data.tags
    return Model(
        label=label, key=key, role=tags.get("findistill.role", "model"),
        runtime=tags.get("findistill.runtime", "pytorch-fp32"), f1=metrics.get(f"{split}_f1", math.nan),
        validation_f1=metrics.get("validation_f1", metrics.get("best_val_f1", math.nan)),
        costs={metric: metrics[metric] for metric, _, _ in COSTS if metric in metrics},
        uri=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id,
        details={k: tags[k] for k in ("findistill.depth", "findistill.vocab_size") if k in tags},
    )


def _evaluated_costs(ids: list[str], split: str, max_runs: int) -> dict[str, dict[str, float]]:
    """The resource metrics of the finished ``evaluate`` runs of ``ids`` on ``split``, by the model reference
    they evaluated (the latest run wins): a model trained without ``measure_resources`` gets its costs
    from a later ``evaluate``."""
    runs = MlflowClient().search_runs(ids, "tags.`findistill.stage` = 'evaluate' and attributes.status = 'FINISHED'",
                                      max_results=max_runs, order_by=["attributes.start_time ASC"])
    found: dict[str, dict[str, float]] = {}
    for run in runs:
        costs = {metric: run.data.metrics[metric] for metric, _, _ in COSTS if metric in run.data.metrics}
        if costs and run.data.params.get("split", "test") == split:
            found[run.data.params.get("model", "")] = costs
    return found


def models_from_registry(names: list[str], split: str) -> list[Model]:
    """Every version of the registered models ``names``; quality and costs from the version's tags (see
    :func:`findistill.tracking.registry.version_tags`), else from its run."""
    client = MlflowClient()
    from_tag = {metric: tag for tag, metric in VERSION_METRICS.items()}
    models = []
    for name in names:
        versions = client.search_model_versions(f"name='{name}'")
        if not versions:
            raise ConfigError(f"registered_models: no registered model {name!r} (or no versions) in "
                              f"{mlflow.get_tracking_uri()}")
        aliases = client.get_registered_model(name).aliases  # alias -> version
        for version in sorted(versions, key=lambda v: int(v.version)):
            tags = version.tags
            metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
            costs = {metric: float(tags[tag]) if tag in tags else metrics[metric]
                     for metric, tag in ((m, from_tag.get(m, m)) for m, _, _ in COSTS)
                     if tag in tags or metric in metrics}
            held = [alias for alias, v in aliases.items() if str(v) == str(version.version)]
            label = f"{name} v{version.version}" + (f" @{','.join(held)}" if held else "")
            f1 = tags.get(f"{split}_f1", metrics.get(f"{split}_f1"))
            validation = tags.get("validation_f1", metrics.get("validation_f1", metrics.get("best_val_f1")))
            models.append(Model(
                label=label, key=f"{name}/{version.version}", role=tags.get("role", "model"),
                runtime=tags.get("runtime", "pytorch-fp32"), f1=float(f1) if f1 is not None else math.nan,
                validation_f1=float(validation) if validation is not None else math.nan, costs=costs,
                uri=f"models:/{name}/{version.version}", run_id=version.run_id or "",
                details={k: tags[k] for k in ("dataset", "depth", "vocab_size", "tokenizer") if k in tags},
            ))
    return models


def remeasure(models: list[Model], config: Config) -> str:
    """Measure one model per configuration (its first seed) side by side in one fresh process, in
    ``config.rounds`` rounds of alternating order, and give every model of the configuration those
    costs. Returns the sentence that says how (for the dashboard and the table's notes)."""
    firsts: dict[str, Model] = {}
    for model in models:
        firsts.setdefault(model.key, model)
    folders = {key: localize_model(model.uri) for key, model in firsts.items()}
    data = _data_of(config, next(iter(firsts.values())))
    sentences = [s.tokens for s in data.splits[config.split]]
    device = resolve_device(config.device)
    print(f"measuring {len(folders)} models side by side in one fresh process on {len(sentences)} "
          f"{config.split} sentences of {data.name} ({config.rounds} rounds)")
    measured = measure_saved_models(folders, sentences, max_length=config.max_length, device=device,
                                    rounds=config.rounds)
    for model in models:
        model.costs = {metric: measured[model.key][metric] for metric, _, _ in COSTS if metric in measured[model.key]}
    threads = int(next(iter(measured.values())).get("cpu_threads", 0))
    return (f"Costs measured side by side in one fresh process on the {len(sentences)} {config.split} sentences "
            f"of {data.name}, {threads} CPU thread(s), one model at a time, medians of {config.rounds} round(s) in "
            f"alternating order.")


def _data_of(config: Config, model: Model):
    """``config.data``, or the data (and its split settings) of ``model``'s run."""
    if config.data:
        return load_stage_data(DataParams(data=config.data))
    params = MlflowClient().get_run(model.run_id).data.params if model.run_id else {}
    if "data" not in params:
        raise ConfigError("data: remeasure needs sentences to measure on, and the first model's run names no "
                          "data; give data=<the corpus>")
    split_settings = [f.name for f in fields(DataParams) if f.name != "max_sentences"]  # every split, in full
    return load_stage_data(parse_params(DataParams, {name: params[name] for name in split_settings
                                                     if name in params}))


def tokenization_images(ids: list[str]) -> dict[str, bytes]:
    """The PNG plots of the ``analyze_tokenization`` and ``train_tokenizer`` runs of ``ids`` (newest first,
    at most :data:`MAX_IMAGES`), captioned with their run and file name."""
    client = MlflowClient()
    runs = [run for stage in ("analyze_tokenization", "train_tokenizer")
            for run in client.search_runs(
                ids, f"tags.`findistill.stage` = '{stage}' and attributes.status = 'FINISHED'", max_results=3,
                order_by=["attributes.start_time DESC"])]
    images: dict[str, bytes] = {}
    for run in runs:
        for item in client.list_artifacts(run.info.run_id, "plots"):
            if len(images) >= MAX_IMAGES:
                return images
            if item.path.endswith(".png"):
                local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=item.path)
                images[f"{run.data.tags.get('mlflow.runName', run.info.run_id[:8])}: {Path(item.path).name}"] = \
                    Path(local).read_bytes()
    return images


def log_report(models: list[Model], *, split: str, title: str, output_dir: str, notes: list[str] | None = None,
               images: dict[str, bytes] | None = None) -> list[Row]:
    """Group ``models``, mark the fronts, and log ``compare/table.{md,csv,json}`` and ``compare/dashboard.html``
    in the active run (the dashboard also to ``<output_dir>/<title>.html`` unless ``output_dir`` is
    ``none``); return the rows."""
    rows = mark_fronts(group(models))
    table = markdown(rows, split)
    log_text(table, "compare/table.md")
    log_text(to_csv(rows), "compare/table.csv")
    log_json([row.as_dict() for row in rows], "compare/table.json")
    with scratch_dir("compare") as tmp:
        page = write_dashboard(rows, Path(tmp) / "dashboard.html", title=title, split=split, notes=notes,
                               images=images)
        mlflow.log_artifact(str(page), "compare")
        if output_dir != "none":
            target = Path(output_dir) / f"{safe_label(title)}.html"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(page.read_bytes())
            print(f"dashboard: {target.resolve()}")
    fronts = {name: [r.label for r in pareto_front(rows, cost)] for name, cost in FRONTS}  # cheapest first
    log_metrics({"models_compared": len(rows), "pareto_latency_count": len(fronts["latency"]),
                 "pareto_size_count": len(fronts["size"])})
    mlflow.set_tag("findistill.pareto_latency", "; ".join(fronts["latency"])[:5000])
    print(f"\n{table}")
    return rows


def run(config: Config) -> str:
    """Collect the models, log the table and the dashboard; return the run id."""
    with stage_run("compare", config, run_name=f"compare {config.title}".strip()) as run:
        if config.registered_models:
            names = split_list(config.registered_models)
            models, images, scope = models_from_registry(names, config.split), {}, ", ".join(names)
        else:
            ids = experiment_ids_of(config.experiments)
            models = models_from_runs(ids, config.filter, config.split, config.max_runs)
            models = [m for m in models if m.run_id != run.info.run_id]
            images = tokenization_images(ids)
            scope = "experiments " + ", ".join(mlflow.get_experiment(i).name for i in ids)
        if not models:
            raise ConfigError(f"nothing to compare in {scope}: no finished run with a teacher, student or "
                              f"quantized model and {config.split}_f1" + (f" matching {config.filter!r}"
                                                                         if config.filter else ""))
        title = config.title or scope
        notes = [remeasure(models, config)] if config.remeasure else [
            "Costs are each model's own measurement, taken when its run ran: gaps of ~20% between runs of "
            "different sessions are machine noise (remeasure=true measures them side by side)."]
        rows = log_report(models, split=config.split, title=title, output_dir=config.output_dir, images=images,
                          notes=notes)
        front = [r.label for r in pareto_front(rows, "latency_cpu_b1_ms_p50")]
        describe_run(f"Compared {len(rows)} model configurations ({len(models)} models) of {scope} on "
                     f"{config.split}. F1/latency Pareto front: {', '.join(front) or 'none'}.")
        return run.info.run_id
