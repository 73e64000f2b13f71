"""The MLflow Model Registry: versions registered only once their run's work is logged, tagged with what
makes them comparable without opening their runs, and promoted by moving aliases.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from findistill.tracking.runs import logged_model_id

#: alias of the version in service, and of the one it replaced
CHAMPION, PREVIOUS = "champion", "previous"
#: run metrics copied onto a registered version as tags (name on the version: metric of the run)
VERSION_METRICS = {
    "params_total": "params_total", "model_size_mb": "model_size_mb",
    "latency_cpu_b1_ms": "latency_cpu_b1_ms_p50", "latency_cpu_b32_ms": "latency_cpu_b32_ms_p50",
    "throughput_cpu_words_per_s": "throughput_cpu_words_per_s", "peak_rss_mb": "peak_rss_mb",
    "latency_gpu_b1_ms": "latency_gpu_b1_ms_p50", "gpu_peak_mem_mb": "gpu_peak_mem_mb",
}
#: run parameters copied onto a registered version as tags (what the model was trained with)
VERSION_PARAMS = ("tokenizer", "vocab_transfer", "student_layers", "temperature", "kd_weight", "ce_weight",
                  "hidden_weight", "attention_weight", "transfer_data", "epochs", "learning_rate", "seed", "variant")
#: metric names where a lower value is better (``promote`` with ``direction=auto``)
LOWER_IS_BETTER = ("latency", "size", "rss", "mem", "params", "loss")


class PromotionError(ValueError):
    """A promotion that was refused or cannot be done (unknown model, version or metric), in one line."""


def register(model_uri: str, name: str, tags: dict[str, Any] | None = None, alias: str | None = None) -> int:
    """Register ``model_uri`` as a new version of ``name`` (after the run's work is complete); return the version.

    A ``runs:/<id>/model`` is registered as the logged model it names (``models:/<model_id>``), which is
    where MLflow 3 keeps the files."""
    model_id = logged_model_id(model_uri) if model_uri.startswith("runs:/") else None
    version = mlflow.register_model(f"models:/{model_id}" if model_id else model_uri, name)
    client = MlflowClient()
    for k, v in (tags or {}).items():
        client.set_model_version_tag(name, version.version, k, str(v))
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return int(version.version)


def version_tags(run_id: str, metrics: dict[str, float] | None = None) -> dict[str, str]:
    """The tags of a registered version of run ``run_id``'s model: role, dataset, F1 on validation and
    on the evaluation split, parameters, size, CPU (and GPU) latency, runtime, tokenizer and vocabulary
    size, depth, training and KD settings, source run and parent model.

    Values come from the run; ``metrics`` overrides its metrics (``main`` passes the costs it measured
    side by side). Missing values are left out."""
    run = MlflowClient().get_run(run_id)
    params, tags, values = run.data.params, run.data.tags, {**run.data.metrics, **(metrics or {})}
    split = params.get("eval_split") or params.get("split") or "test"
    out = {
        "role": tags.get("findistill.role", ""), "stage": tags.get("findistill.stage", ""),
        "dataset": tags.get("findistill.corpus", ""), "runtime": tags.get("findistill.runtime", "pytorch-fp32"),
        "depth": tags.get("findistill.depth", ""), "vocab_size": tags.get("findistill.vocab_size", ""),
        "source_run": run_id, "model_id": tags.get("findistill.model_id", ""),
        "parent_model": params.get("teacher") or params.get("model") or "",
        "eval_split": split,
    }
    validation = values.get("validation_f1", values.get("best_val_f1"))
    if validation is not None:
        out["validation_f1"] = f"{validation:.4f}"
    if f"{split}_f1" in values:
        out[f"{split}_f1"] = f"{values[f'{split}_f1']:.4f}"
    for name, metric in VERSION_METRICS.items():
        if metric in values:
            out[name] = f"{values[metric]:.4g}" if metric != "params_total" else str(int(values[metric]))
    out.update({name: params[name] for name in VERSION_PARAMS if name in params})
    return {k: v for k, v in out.items() if v != ""}


def lower_is_better(metric: str) -> bool:
    return any(word in metric for word in LOWER_IS_BETTER)


def version_value(name: str, version: str, metric: str) -> float:
    """``metric`` of a registered version: its tag, else the metric of its run (``best_val_f1`` stands in
    for a missing ``validation_f1``)."""
    client = MlflowClient()
    found = client.get_model_version(name, version)
    if metric in found.tags:
        return float(found.tags[metric])
    metrics = client.get_run(found.run_id).data.metrics if found.run_id else {}
    if metric == "validation_f1" and metric not in metrics and "best_val_f1" in metrics:
        metric = "best_val_f1"
    if metric not in metrics:
        raise PromotionError(f"metric: version {version} of {name} has no {metric!r} (neither a version tag nor a "
                             f"metric of run {found.run_id}); its tags: {', '.join(sorted(found.tags)) or 'none'}")
    return float(metrics[metric])


def resolve_version(name: str, version: str) -> str:
    """A version number of registered model ``name``: ``version`` as given, ``latest``, or an alias."""
    client, version = MlflowClient(), str(version)
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except mlflow.exceptions.MlflowException as err:
        raise PromotionError(f"name: cannot read registered model {name!r}: {err}") from err
    if not versions:
        raise PromotionError(f"name: no registered model {name!r} (or it has no versions) in "
                             f"{mlflow.get_tracking_uri()}")
    numbers = sorted(int(v.version) for v in versions)
    if version == "latest":
        return str(numbers[-1])
    if version.isdigit():
        if int(version) not in numbers:
            raise PromotionError(f"version: {name} has no version {version}; it has {', '.join(map(str, numbers))}")
        return version
    try:
        return str(client.get_model_version_by_alias(name, version).version)
    except mlflow.exceptions.MlflowException as err:
        raise PromotionError(f"version: {version!r} is neither a version number of {name}, 'latest', nor one of "
                             f"its aliases") from err


def current_champion(name: str, alias: str = CHAMPION) -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def promote(name: str, version: str, *, metric: str, tolerance: float = 0.0, direction: str = "auto",
            force: bool = False, alias: str = CHAMPION) -> dict[str, Any]:
    """Move ``alias`` of ``name`` to ``version`` if it is not worse than the version holding the alias on
    ``metric`` by more than ``tolerance`` (``direction``: maximize, minimize, or auto: minimize for
    latency, size, memory, parameters and losses), or with ``force``. The version that held the alias
    gets :data:`PREVIOUS` (``<alias>-previous`` for another alias than :data:`CHAMPION`). Raises
    :class:`PromotionError` with the reason on a refusal.

    Returns what was decided: ``version``, ``previous`` (None for a first champion), the two values,
    ``decision`` (``promoted``, ``forced``, ``first`` or ``unchanged``)."""
    if direction not in ("auto", "maximize", "minimize"):
        raise PromotionError(f"direction: expected auto, maximize or minimize, got {direction!r}")
    version = resolve_version(name, version)
    value = version_value(name, version, metric)
    champion = current_champion(name, alias)
    outcome: dict[str, Any] = {"name": name, "version": version, "metric": metric, "value": value,
                               "previous": champion, "previous_value": None, "alias": alias}
    client = MlflowClient()
    if champion == version:
        return {**outcome, "decision": "unchanged"}
    if champion is not None:
        held = version_value(name, champion, metric)
        outcome["previous_value"] = held
        lower = direction == "minimize" or (direction == "auto" and lower_is_better(metric))
        loss = (value - held) if lower else (held - value)
        if loss > tolerance and not force:
            raise PromotionError(
                f"version {version} of {name} is worse than {alias} version {champion} on {metric} "
                f"({value:.4g} vs {held:.4g}, {'higher' if lower else 'lower'} by {loss:.4g} > tolerance "
                f"{tolerance:g}); {alias} stays on version {champion} (force=true promotes it anyway)")
        previous_alias = PREVIOUS if alias == CHAMPION else f"{alias}-{PREVIOUS}"
        client.set_registered_model_alias(name, previous_alias, champion)
        outcome["decision"] = "forced" if loss > tolerance else "promoted"
    else:
        outcome["decision"] = "first"
    client.set_registered_model_alias(name, alias, version)
    return outcome
