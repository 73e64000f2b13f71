"""``compare``: the models of experiments or of the registry in one table with their Pareto fronts, and the
dashboard written where users look for it."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from findistill.config import ConfigError, parse_params
from findistill.stages import compare


def _model_run(name: str, role: str, f1: float, *, latency: float | None = None, size: float | None = None,
               seed: int = 42, params: dict | None = None, status: str = "FINISHED", runtime: str | None = None) -> str:
    """A finished run as a training stage leaves it: role tag, parameters, test F1 and (some) costs."""
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params({"seed": seed, "epochs": 3, **(params or {})})
        mlflow.set_tags({"findistill.role": role, "findistill.runtime": runtime or "pytorch-fp32"})
        metrics = {"test_f1": f1, "best_val_f1": f1 + 0.1}
        if latency is not None:
            metrics["latency_cpu_b1_ms_p50"] = latency
        if size is not None:
            metrics["model_size_mb"] = size
        mlflow.log_metrics(metrics)
    if status != "FINISHED":
        MlflowClient().set_terminated(run.info.run_id, status)
    return run.info.run_id


@pytest.fixture
def study(mlflow_store):
    mlflow.set_experiment("study")
    _model_run("finetune teacher", "teacher", 0.80, latency=20.0, size=90.0)
    _model_run("distill s2-same", "student", 0.70, latency=8.0, size=50.0, seed=1, params={"student_layers": 2})
    _model_run("distill s2-same", "student", 0.72, latency=9.0, size=50.0, seed=2, params={"student_layers": 2})
    _model_run("distill s4-same", "student", 0.65, latency=12.0, size=70.0, params={"student_layers": 4})
    _model_run("quantize onnx-int8", "quantized", 0.69, latency=3.0, size=15.0, runtime="onnxruntime-int8")
    _model_run("killed", "student", 0.99, latency=1.0, size=1.0, status="KILLED")  # not a finished model
    with mlflow.start_run(run_name="prepare"):  # no model: not compared
        mlflow.log_metric("test_f1", 1.0)
    return mlflow_store


def _rows(run_id: str) -> dict[str, dict]:
    return {row["label"]: row for row in mlflow.artifacts.load_dict(f"runs:/{run_id}/compare/table.json")}


def test_seeds_are_grouped_and_the_dominated_model_is_off_both_fronts(study, tmp_path):
    run_id = compare.run(parse_params(compare.Config, {"experiments": "study", "title": "my study",
                                                       "output_dir": str(tmp_path / "out")}))
    rows = _rows(run_id)
    assert sorted(rows) == ["distill s2-same", "distill s4-same", "finetune teacher", "quantize onnx-int8"]
    seeds = rows["distill s2-same"]
    assert seeds["seeds"] == 2 and seeds["f1_mean"] == pytest.approx(0.71)
    assert seeds["f1_sd"] == pytest.approx(0.0141421, abs=1e-6)
    assert seeds["latency_cpu_b1_ms_p50"] == pytest.approx(8.5)
    # s4 is slower, bigger and worse than s2: dominated on both fronts; the others each win somewhere
    assert rows["distill s4-same"]["pareto"] == ""
    for label in ("distill s2-same", "finetune teacher", "quantize onnx-int8"):
        assert rows[label]["pareto"] == "latency,size", label

    run = MlflowClient().get_run(run_id)
    assert run.data.metrics["models_compared"] == 4 and run.data.metrics["pareto_latency_count"] == 3
    assert run.data.tags["mlflow.runName"] == "compare my study"
    assert "Pareto front: quantize onnx-int8, distill s2-same, finetune teacher" in run.data.tags["mlflow.note.content"]
    table = mlflow.artifacts.load_text(f"runs:/{run_id}/compare/table.md")
    assert "| distill s2-same | student | pytorch-fp32 | 0.7100 ± 0.0141 (2) | 0.8100 |" in table
    page = (tmp_path / "out" / "my_study.html").read_text()
    assert page == mlflow.artifacts.load_text(f"runs:/{run_id}/compare/dashboard.html")
    assert 'id="comparison"' in page and page.count("<tr class=") == 4


def test_a_filter_narrows_the_runs_and_a_bad_one_names_the_parameter(study, tmp_path):
    run_id = compare.run(parse_params(compare.Config, {
        "experiments": "study", "filter": "tags.`findistill.role` = 'student'", "output_dir": "none"}))
    assert sorted(_rows(run_id)) == ["distill s2-same", "distill s4-same"]
    with pytest.raises(ConfigError, match="filter: MLflow cannot search runs"):
        compare.run(parse_params(compare.Config, {"experiments": "study", "filter": "role is student",
                                                  "output_dir": "none"}))


def test_nothing_to_compare_and_an_unknown_experiment_are_one_line_errors(mlflow_store):
    mlflow.set_experiment("empty")
    with pytest.raises(ConfigError, match="nothing to compare in experiments empty"):
        compare.run(parse_params(compare.Config, {"experiments": "empty", "output_dir": "none"}))
    with pytest.raises(ConfigError, match="no experiment 'missing'.*known: .*empty"):
        compare.run(parse_params(compare.Config, {"experiments": "missing", "output_dir": "none"}))
    with pytest.raises(ConfigError, match="no experiment '999'"):
        compare.run(parse_params(compare.Config, {"experiments": "999", "output_dir": "none"}))


def test_registered_versions_are_compared_with_the_costs_their_tags_carry(study, tmp_path):
    client = MlflowClient()
    client.create_registered_model("fin-ner")
    runs = {r.data.tags["mlflow.runName"]: r.info.run_id
            for r in client.search_runs([mlflow.get_experiment_by_name("study").experiment_id])}
    for name, tags in (("finetune teacher", {"role": "teacher", "test_f1": "0.8", "latency_cpu_b1_ms": "18"}),
                       ("quantize onnx-int8", {"role": "quantized", "test_f1": "0.69", "runtime": "onnxruntime-int8",
                                               "latency_cpu_b1_ms": "2.5"})):
        client.create_model_version("fin-ner", str(tmp_path), run_id=runs[name], tags=tags)
    client.set_registered_model_alias("fin-ner", "champion", "1")
    run_id = compare.run(parse_params(compare.Config, {"registered_models": "fin-ner", "output_dir": "none"}))
    rows = _rows(run_id)
    assert sorted(rows) == ["fin-ner v1 @champion", "fin-ner v2"]
    assert rows["fin-ner v1 @champion"]["latency_cpu_b1_ms_p50"] == 18.0  # the tag, not the run's 20
    assert rows["fin-ner v2"]["model_size_mb"] == 15.0  # no tag: the run's metric
    assert rows["fin-ner v2"]["runtime"] == "onnxruntime-int8" and rows["fin-ner v2"]["pareto"] == "latency,size"
    assert not Path("dashboards").exists()  # output_dir=none writes no file


def test_a_model_trained_without_costs_gets_them_from_a_later_evaluate_run(study):
    unmeasured = _model_run("distill s1-same", "student", 0.60, params={"student_layers": 1})
    for latency, split in ((7.0, "validation"), (4.0, "test")):  # only the compared split counts
        with mlflow.start_run(run_name="evaluate"):
            mlflow.log_params({"model": f"runs:/{unmeasured}/model", "split": split})
            mlflow.set_tag("findistill.stage", "evaluate")
            mlflow.log_metrics({"latency_cpu_b1_ms_p50": latency, "test_f1": 0.6})
    rows = _rows(compare.run(parse_params(compare.Config, {"experiments": "study", "output_dir": "none"})))
    assert rows["distill s1-same"]["latency_cpu_b1_ms_p50"] == 4.0
    assert rows["distill s1-same"]["pareto"] == ""  # the int8 model is faster (3 ms) and better (0.69)
    assert "evaluate" not in rows  # an evaluate run is not a model of its own


def test_remeasure_measures_one_model_per_configuration_side_by_side(mlflow_store, tiny_classifier, tmp_path):
    from findistill.costs.size import count_parameters
    from findistill.tracking.pyfunc import log_ner_model

    model, tokenizer = tiny_classifier
    folder = tmp_path / "tiny"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    mlflow.set_experiment("measured")
    for seed, latency in ((1, 999.0), (2, 555.0)):  # two seeds of one configuration, stale costs logged
        with mlflow.start_run(run_name="distill s2-same"):
            mlflow.log_params({"seed": seed, "data": "sample", "max_sentences": 0})
            mlflow.set_tags({"findistill.role": "student"})
            log_ner_model(folder, max_length=32, example_texts=["Acme rose ."])
            mlflow.log_metrics({"test_f1": 0.5, "latency_cpu_b1_ms_p50": latency})
    run_id = compare.run(parse_params(compare.Config, {
        "experiments": "measured", "remeasure": "true", "rounds": "1", "max_length": "32", "output_dir": "none"}))
    row = _rows(run_id)["distill s2-same"]
    assert row["seeds"] == 2
    assert 0 < row["latency_cpu_b1_ms_p50"] < 555.0  # measured now, not the mean of the logged 999 and 555
    assert row["params_total"] == count_parameters(model)["params_total"]
    page = mlflow.artifacts.load_text(f"runs:/{run_id}/compare/dashboard.html")
    assert "Costs measured side by side in one fresh process on the 100 test sentences of sample" in page
