"""The stages end to end against a temporary SQLite tracking store.

``test_mlflow_run_chain`` drives the real entry points through ``mlflow run`` (a subprocess per
stage, as users run them); the others call the stages in-process, which is faster.
"""

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from findistill.cli import main as cli_main
from findistill.resources import RESOURCE_METRICS

from conftest import REPO, shared_corpus

pytestmark = pytest.mark.integration


def _mlflow_run(entry: str, store: str, experiment: str, **params) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "mlflow", "run", str(REPO), "-e", entry, "--env-manager", "local",
        "--experiment-name", experiment,
    ]
    for key, value in params.items():
        command += ["-P", f"{key}={value}"]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # `python` = this venv's
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "TOKENIZERS_PARALLELISM": "false", "PATH": path}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


def _only_run(experiment: str, stage: str):
    runs = mlflow.search_runs(experiment_names=[experiment], filter_string=f"tags.`findistill.stage` = '{stage}'")
    assert len(runs) == 1, runs
    return runs.iloc[0]


def test_mlflow_run_chain(mlflow_store, tiny_encoder_dir, tmp_path):
    """prepare -> finetune -> evaluate through `mlflow run` on a slice of the SEC corpus."""
    experiment = "integration"
    mlflow.create_experiment(experiment, artifact_location=str(tmp_path / "artifacts"))
    sec = shared_corpus("sec-filings")

    done = _mlflow_run("prepare", mlflow_store, experiment, data=sec, max_sentences=60)
    assert done.returncode == 0, done.stderr[-3000:]
    prepared = _only_run(experiment, "prepare")
    assert prepared["metrics.test_sentences"] == 60 and prepared["metrics.train_sentences"] == 60
    assert prepared["params.data"] == str(sec)

    data_uri = f"runs:/{prepared.run_id}/data"
    done = _mlflow_run(
        "finetune", mlflow_store, experiment, data=data_uri, model=tiny_encoder_dir, epochs=2,
        learning_rate=0.003, batch_size=8, max_length=64,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    tuned = _only_run(experiment, "finetune")
    assert tuned.status == "FINISHED"
    history = MlflowClient().get_metric_history(tuned.run_id, "val_f1")
    assert [m.step for m in history] == [1, 2]
    for name in RESOURCE_METRICS:
        assert f"metrics.{name}" in tuned.index and tuned[f"metrics.{name}"] >= 0, name
    assert tuned["metrics.params_total"] > tuned["metrics.params_embedding"] > tuned["metrics.params_encoder"] > 0
    assert 0.0 <= tuned["metrics.test_f1"] <= 1.0
    assert {"test_f1_PER", "test_precision_ORG", "test_support_LOC"} <= {
        k.removeprefix("metrics.") for k in tuned.index}
    artifacts = {a.path for a in MlflowClient().list_artifacts(tuned.run_id, "evaluation")}
    assert "evaluation/test_report.txt" in artifacts and "evaluation/resources.md" in artifacts

    done = _mlflow_run("evaluate", mlflow_store, experiment, model=f"runs:/{tuned.run_id}/model", data=data_uri,
                       max_length=64)
    assert done.returncode == 0, done.stderr[-3000:]
    evaluated = _only_run(experiment, "evaluate")
    # the model logged to MLflow and loaded back scores exactly what the trained model scored
    assert evaluated["metrics.test_f1"] == pytest.approx(tuned["metrics.test_f1"], abs=1e-9)

    served = mlflow.pyfunc.load_model(f"runs:/{tuned.run_id}/model")
    (spans,) = served.predict({"text": ["The Borrower , Acme Holdings Inc. , is located in Dallas , Texas ."]})
    assert isinstance(spans, list) and all({"entity", "start", "end", "text"} <= set(s) for s in spans)


def test_bad_input_fails_through_mlflow_run_with_file_and_line(mlflow_store, tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("Acme B-ORG\nCorp X-FOO\n\n", encoding="utf-8")
    done = _mlflow_run("prepare", mlflow_store, "bad-input", data=bad)
    assert done.returncode != 0
    assert f"{bad}:2" in done.stderr and "X-FOO" in done.stderr
    runs = mlflow.search_runs(experiment_names=["bad-input"])
    assert set(runs.status) <= {"FAILED"}  # nothing is recorded as a finished run


def test_main_chains_child_runs_and_reuses_nothing_half_written(mlflow_store, tiny_encoder_dir, capsys):
    code = cli_main([
        "main", "--model", str(tiny_encoder_dir), "--epochs", "1", "--learning_rate", "0.003",
        "--max_sentences", "40", "--max_length", "64", "--registered_model_name", "fin-ner-teacher",
    ])
    assert code == 0
    runs = mlflow.search_runs(search_all_experiments=True)
    parent = runs[runs["tags.findistill.stage"] == "main"].iloc[0]
    children = runs[runs["tags.mlflow.parentRunId"] == parent.run_id]
    assert sorted(children["tags.findistill.stage"]) == ["evaluate", "finetune", "prepare"]
    assert set(runs.status) == {"FINISHED"}
    version = MlflowClient().get_model_version("fin-ner-teacher", "1")
    assert version.tags["role"] == "teacher" and "test_f1" in version.tags
    assert "tags a sentence" in capsys.readouterr().out


def test_stage_errors_end_before_any_run(mlflow_store, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert cli_main(["finetune", "--data", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    assert mlflow.search_runs(search_all_experiments=True).empty
