"""The registry: comparable version tags, and promotion by aliases that refuses a worse model."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from findistill.config import parse_params
from findistill.stages import promote as promote_stage
from findistill.tracking.registry import PREVIOUS, PromotionError, promote, version_tags


def _version(name: str, tmp_path, metrics: dict[str, float], tags: dict[str, str] | None = None) -> str:
    """A registered version of ``name`` whose run logged ``metrics`` (the version's source is a plain folder)."""
    with mlflow.start_run() as run:
        mlflow.log_metrics(metrics)
    client = MlflowClient()
    if not client.search_registered_models(f"name='{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, str(tmp_path), run_id=run.info.run_id, tags=tags or {})
    return str(version.version)


def _aliases(name: str) -> dict[str, str]:
    return {alias: str(v) for alias, v in MlflowClient().get_registered_model(name).aliases.items()}


def test_a_worse_version_is_refused_and_a_better_one_moves_champion_and_previous(mlflow_store, tmp_path):
    v1 = _version("ner", tmp_path, {"validation_f1": 0.80})
    v2 = _version("ner", tmp_path, {"validation_f1": 0.75})
    v3 = _version("ner", tmp_path, {"validation_f1": 0.82})

    assert promote("ner", v1, metric="validation_f1")["decision"] == "first"
    assert _aliases("ner") == {"champion": v1}

    with pytest.raises(PromotionError) as refused:
        promote("ner", v2, metric="validation_f1")
    message = str(refused.value)
    assert "\n" not in message and "version 2" in message and "0.75" in message and "0.8" in message
    assert _aliases("ner") == {"champion": v1}  # nothing moved

    outcome = promote("ner", "latest", metric="validation_f1")
    assert outcome["decision"] == "promoted" and outcome["version"] == v3 and outcome["previous"] == v1
    assert _aliases("ner") == {"champion": v3, PREVIOUS: v1}

    assert promote("ner", v3, metric="validation_f1")["decision"] == "unchanged"


def test_tolerance_and_force_let_a_slightly_worse_version_through(mlflow_store, tmp_path):
    v1 = _version("ner", tmp_path, {"validation_f1": 0.80})
    v2 = _version("ner", tmp_path, {"validation_f1": 0.795})
    v3 = _version("ner", tmp_path, {"validation_f1": 0.70})
    promote("ner", v1, metric="validation_f1")
    assert promote("ner", v2, metric="validation_f1", tolerance=0.01)["decision"] == "promoted"
    with pytest.raises(PromotionError):
        promote("ner", v3, metric="validation_f1", tolerance=0.01)
    assert promote("ner", v3, metric="validation_f1", force=True)["decision"] == "forced"
    assert _aliases("ner") == {"champion": v3, PREVIOUS: v2}


def test_latency_is_compared_lower_is_better_and_version_tags_win_over_run_metrics(mlflow_store, tmp_path):
    fast = _version("ner", tmp_path, {"latency_cpu_b1_ms": 50.0}, tags={"latency_cpu_b1_ms": "4.0"})
    slow = _version("ner", tmp_path, {"latency_cpu_b1_ms": 1.0}, tags={"latency_cpu_b1_ms": "9.0"})
    promote("ner", fast, metric="latency_cpu_b1_ms")
    with pytest.raises(PromotionError, match="higher by 5"):
        promote("ner", slow, metric="latency_cpu_b1_ms")
    # the same numbers read as scores: higher is better
    assert promote("ner", slow, metric="latency_cpu_b1_ms", direction="maximize")["decision"] == "promoted"


def test_unknown_names_versions_and_metrics_are_one_line_errors(mlflow_store, tmp_path):
    _version("ner", tmp_path, {"validation_f1": 0.8})
    with pytest.raises(PromotionError, match="no registered model 'nope'"):
        promote("nope", "latest", metric="validation_f1")
    with pytest.raises(PromotionError, match="has no version 7; it has 1"):
        promote("ner", "7", metric="validation_f1")
    with pytest.raises(PromotionError, match="neither a version number"):
        promote("ner", "staging", metric="validation_f1")
    with pytest.raises(PromotionError, match="has no 'test_f1'"):
        promote("ner", "1", metric="test_f1")


def test_best_val_f1_of_a_training_run_stands_in_for_validation_f1(mlflow_store, tmp_path):
    v1 = _version("ner", tmp_path, {"best_val_f1": 0.9})
    v2 = _version("ner", tmp_path, {"best_val_f1": 0.7})
    promote("ner", v1, metric="validation_f1")
    with pytest.raises(PromotionError, match="0.7 vs 0.9"):
        promote("ner", v2, metric="validation_f1")


def test_the_promote_stage_fails_its_run_with_the_reason_on_a_refusal(mlflow_store, tmp_path):
    v1 = _version("ner", tmp_path, {"validation_f1": 0.8})
    _version("ner", tmp_path, {"validation_f1": 0.6})
    promote_stage.run(parse_params(promote_stage.Config, {"name": "ner", "version": v1}))
    with pytest.raises(PromotionError):
        promote_stage.run(parse_params(promote_stage.Config, {"name": "ner"}))
    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`findistill.stage` = 'promote'",
                              output_format="list", order_by=["attributes.start_time ASC"])
    assert [r.info.status for r in runs] == ["FINISHED", "FAILED"]
    assert "worse than champion version 1" in runs[1].data.tags["findistill.fail_reason"]
    assert runs[0].data.tags["findistill.promotion"] == "first"
    assert _aliases("ner") == {"champion": v1}


def test_version_tags_carry_what_makes_versions_comparable(mlflow_store):
    with mlflow.start_run() as run:
        mlflow.log_params({"eval_split": "test", "teacher": "runs:/abc/model", "tokenizer": "runs:/tok/tokenizer",
                           "temperature": "2.0", "kd_weight": "0.5", "seed": "42", "batch_size": "16"})
        mlflow.log_metrics({"test_f1": 0.71234, "best_val_f1": 0.8, "params_total": 9893767.0,
                            "model_size_mb": 37.75, "latency_cpu_b1_ms_p50": 8.5, "latency_cpu_b32_ms_p50": 120.0})
        mlflow.set_tags({"findistill.role": "student", "findistill.corpus": "finer-ord", "findistill.depth": "2",
                         "findistill.vocab_size": "16000", "findistill.runtime": "pytorch-fp32"})
    tags = version_tags(run.info.run_id, {"latency_cpu_b1_ms_p50": 7.25})
    assert tags["role"] == "student" and tags["dataset"] == "finer-ord" and tags["source_run"] == run.info.run_id
    assert tags["test_f1"] == "0.7123" and tags["validation_f1"] == "0.8000"
    assert tags["params_total"] == "9893767" and tags["model_size_mb"] == "37.75"
    assert tags["latency_cpu_b1_ms"] == "7.25"  # the override (side-by-side costs) wins
    assert tags["latency_cpu_b32_ms"] == "120"
    assert tags["depth"] == "2" and tags["vocab_size"] == "16000" and tags["runtime"] == "pytorch-fp32"
    assert tags["parent_model"] == "runs:/abc/model" and tags["tokenizer"] == "runs:/tok/tokenizer"
    assert tags["temperature"] == "2.0" and tags["kd_weight"] == "0.5"
    assert "batch_size" not in tags and "throughput_cpu_words_per_s" not in tags  # not measured: left out
