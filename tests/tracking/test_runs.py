"""Stage runs and MLflow references turned into local folders."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR

from findistill.config import ConfigError
from findistill.data.splits import load_ner_data
from findistill.models.loading import load_tokenizer
from findistill.stages import prepare
from findistill.tracking.runs import localize_model, log_dataset_inputs, log_metrics, stage_run


def test_a_logged_tokenizer_folder_and_a_model_folder_both_localize(mlflow_store, tiny_encoder_dir,
                                                                     packaged_tokenizer, tmp_path):
    packaged_tokenizer.save_pretrained(tmp_path / "tokenizer")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(tmp_path / "tokenizer"), "tokenizer")
        mlflow.log_artifacts(str(tiny_encoder_dir), "model/artifacts/hf_model")
    tokenizer_dir = localize_model(f"runs:/{run.info.run_id}/tokenizer")
    model_dir = localize_model(f"runs:/{run.info.run_id}/model")
    assert model_dir.endswith("hf_model")
    words = ["Harbor", "Point", "Capital"]
    expected = packaged_tokenizer(words, is_split_into_words=True).input_ids
    assert load_tokenizer(tokenizer_dir)(words, is_split_into_words=True).input_ids == expected
    assert load_tokenizer(model_dir)(words, is_split_into_words=True).input_ids == expected
    with pytest.raises(FileNotFoundError, match="no Hugging Face model or tokenizer"):
        mlflow.log_text("x", "empty/readme.txt", run_id=run.info.run_id)
        localize_model(f"runs:/{run.info.run_id}/empty")
    assert localize_model("packaged:all-MiniLM-L6-v2") == "packaged:all-MiniLM-L6-v2"  # not MLflow: passes through


def test_a_run_opened_by_mlflow_run_is_renamed_and_gets_the_config(mlflow_store, monkeypatch):
    config = prepare.Config(max_sentences=5)
    run_id = mlflow.MlflowClient().create_run(mlflow.get_experiment_by_name("Default").experiment_id).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)  # as `mlflow run` leaves it for the entry point
    with stage_run("prepare", config, run_name="prepare sample"):
        log_metrics({"finite": 1.0, "nan": float("nan"), "flag": True, "text": "x"})
    run = mlflow.get_run(run_id)
    assert run.data.tags["mlflow.runName"] == "prepare sample"
    assert run.data.tags["findistill.stage"] == "prepare" and run.data.params["max_sentences"] == "5"
    assert run.data.metrics == {"finite": 1.0}  # NaN, booleans and text are not metrics
    assert run.info.status == "FINISHED"


def test_a_stage_that_raises_leaves_its_run_failed(mlflow_store):
    with pytest.raises(ConfigError):
        with stage_run("prepare", prepare.Config()) as run:
            raise ConfigError("parameter 'x': expected y")
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"


def test_a_dataset_another_run_inserted_first_is_logged_on_the_next_try(mlflow_store, monkeypatch):
    """Two runs logging one split into one experiment at once: the store raises for the second insert
    (the dataset's primary key); the split is tried again and logged once, as every other split."""
    data = load_ner_data("sample")
    real = mlflow.log_input
    calls = []

    def racing(dataset, context=None, **kwargs):
        calls.append(context)
        if calls.count(context) == 1 and context == "validation":
            raise MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, "
                                  "datasets.name, datasets.digest", INTERNAL_ERROR)
        return real(dataset, context=context, **kwargs)

    monkeypatch.setattr(mlflow, "log_input", racing)
    with mlflow.start_run() as run:
        log_dataset_inputs(data)
    logged = [(d.dataset.name, {t.key: t.value for t in d.tags}["mlflow.data.context"])
              for d in mlflow.get_run(run.info.run_id).inputs.dataset_inputs]
    assert sorted(logged) == [(f"{data.name}/{split}", split) for split in ("test", "train", "validation")]
    assert calls.count("validation") == 2 and calls.count("train") == 1

    def broken(dataset, context=None, **kwargs):  # an error that does not go away is raised, not swallowed
        raise MlflowException("the store is read-only", INTERNAL_ERROR)

    monkeypatch.setattr(mlflow, "log_input", broken)
    with mlflow.start_run(), pytest.raises(MlflowException, match="read-only"):
        log_dataset_inputs(data, attempts=2)
