"""A stage that scores a logged model warns when its splits cut the model's training data otherwise."""

from __future__ import annotations

import mlflow

from findistill.stages.common import DataParams, check_source_splits


def _trained_on(**params) -> str:
    """``runs:/<id>/model`` of a finished run that logged these data parameters."""
    with mlflow.start_run(run_name="student") as run:
        mlflow.log_params(params)
    return f"runs:/{run.info.run_id}/model"


def test_another_seed_on_the_same_corpus_is_named_and_tagged(mlflow_store, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    model = _trained_on(data=str(corpus), seed="1", validation_fraction="0.1", split_blocks="0")
    with mlflow.start_run() as run:
        warning = check_source_splits(model, DataParams(data=f"{corpus}/../corpus", seed=42))  # the same folder
    assert "seed=1 (here 42)" in warning and "validation_fraction" not in warning
    assert warning in capsys.readouterr().out
    assert mlflow.get_run(run.info.run_id).data.tags["findistill.split_warning"] == warning


def test_the_same_splits_another_corpus_or_no_run_say_nothing(mlflow_store, tmp_path):
    corpus = str(tmp_path)
    same = _trained_on(data=corpus, seed="7", validation_fraction="0.10", test_fraction="0.1")
    other_corpus = _trained_on(data="sample", seed="1")
    with mlflow.start_run() as run:
        assert check_source_splits(same, DataParams(data=corpus, seed=7, validation_fraction=0.1)) == ""
        assert check_source_splits(other_corpus, DataParams(data=corpus, seed=42)) == ""
        assert check_source_splits(str(tmp_path / "model"), DataParams(data=corpus, seed=42)) == ""
    assert "findistill.split_warning" not in mlflow.get_run(run.info.run_id).data.tags
