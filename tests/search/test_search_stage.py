"""The ``search`` stage on a tiny random teacher and the bundled sample: one MLflow run per trial, a
study that continues its trial count, pruning, failures recorded and the study going on."""

from __future__ import annotations

import math

import optuna
import pytest
from mlflow.tracking import MlflowClient

from findistill.config import ConfigError
from findistill.search.study import make_storage
from findistill.stages import search

SPACE = """
parameters:
  learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
fixed:
  student_layers: 1
  epochs: %d
  batch_size: 8
"""


def _config(tmp_path, teacher: str, epochs: int = 1, **overrides) -> search.Config:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE % epochs)
    params = {"teacher": teacher, "space": str(space), "max_sentences": 24, "retrain": "false",
              "storage": f"sqlite:///{tmp_path / 'optuna.db'}", "study_name": "study", **overrides}
    return search.Config(**params)


def _trial_runs(parent_id: str) -> list:
    experiment = MlflowClient().get_run(parent_id).info.experiment_id
    runs = MlflowClient().search_runs([experiment], filter_string="tags.`findistill.search_trial` = 'true'")
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]


def test_a_study_run_again_continues_its_trial_count_with_one_run_per_trial(mlflow_store, tmp_path, tiny_teacher):
    first = search.run(_config(tmp_path, tiny_teacher, n_trials=2))
    second = search.run(_config(tmp_path, tiny_teacher, n_trials=3))
    study = optuna.load_study(study_name="study", storage=make_storage(f"sqlite:///{tmp_path / 'optuna.db'}"))
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    runs = {pid: _trial_runs(pid) for pid in (first, second)}
    assert sorted(r.data.tags["optuna.trial_number"] for r in runs[first]) == ["0", "1"]
    assert [r.data.tags["optuna.trial_number"] for r in runs[second]] == ["2"]
    by_id = {r.info.run_id: r for rs in runs.values() for r in rs}
    for trial in study.trials:
        run = by_id[trial.user_attrs["mlflow_run_id"]]
        assert run.data.tags["optuna.trial_number"] == str(trial.number)
        assert run.info.status == "FINISHED" and run.data.tags["optuna.trial_state"] == "COMPLETE"
        assert math.isclose(run.data.metrics["validation_f1"], trial.value)
        assert float(run.data.params["learning_rate"]) == pytest.approx(trial.params["learning_rate"])
        assert "test_f1" not in run.data.metrics  # trials never see the test split
    parent = MlflowClient().get_run(second)
    assert parent.data.metrics["trials_complete"] == 3
    artifacts = {a.path for a in MlflowClient().list_artifacts(second, "search")}
    assert {"search/trials.csv", "search/trials.md", "search/summary.json", "search/plots"} <= artifacts
    plots = {a.path.rsplit("/", 1)[-1] for a in MlflowClient().list_artifacts(second, "search/plots")}
    assert {"history_f1.html", "importances_f1.html"} <= plots


def test_pruning_stops_a_trial_below_the_median_and_marks_it_pruned_not_failed(mlflow_store, tmp_path, tiny_teacher):
    config = _config(tmp_path, tiny_teacher, epochs=3, n_trials=5)
    storage = make_storage(config.storage)
    study = optuna.create_study(study_name="study", storage=storage, direction="maximize")
    study.set_user_attr("objectives", ["f1"])
    distribution = optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    for _ in range(4):  # four earlier trials that reached F1 1.0 at every epoch
        study.add_trial(optuna.trial.create_trial(params={"learning_rate": 1e-3},
                                                  distributions={"learning_rate": distribution}, value=1.0,
                                                  intermediate_values={1: 1.0, 2: 1.0, 3: 1.0}))
    parent = search.run(config)
    trial = optuna.load_study(study_name="study", storage=storage).trials[4]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert sorted(trial.intermediate_values) == [1, 2]  # stopped after epoch 2 of 3 (no pruning after epoch 1)
    [run] = _trial_runs(parent)
    assert run.info.status == "KILLED" and run.data.tags["optuna.trial_state"] == "PRUNED"
    history = MlflowClient().get_metric_history(run.info.run_id, "val_f1")
    assert [m.step for m in history] == [1, 2]


def test_a_nan_loss_fails_the_trial_and_validation_f1_goes_to_the_pruner(tmp_path, tiny_teacher):
    from findistill.data.splits import load_ner_data
    from findistill.search.space import load_space
    from findistill.search.study import OBJECTIVES

    config = _config(tmp_path, tiny_teacher)
    space = load_space(config.space, allowed=search.SEARCHABLE, check=search.check_values)
    runner = search.TrialRunner(config, space, [OBJECTIVES["f1"]], load_ner_data("sample"), "study")
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    with pytest.raises(FloatingPointError, match="training loss is nan at epoch 2"):
        runner.report(trial, {"train_loss": float("nan"), "val_f1": 0.5}, 2)
    runner.report(trial, {"train_loss": 0.3, "val_f1": 0.5}, 1)
    assert study.trials[0].intermediate_values == {1: 0.5}


def test_objectives_and_a_study_joined_with_other_objectives_are_refused(mlflow_store, tmp_path, tiny_teacher):
    with pytest.raises(ConfigError, match="parameter 'objectives': expected f1, f1,latency or f1,params"):
        _config(tmp_path, tiny_teacher, objectives="latency")
    optuna.create_study(study_name="study", storage=make_storage(f"sqlite:///{tmp_path / 'optuna.db'}"),
                        directions=["maximize", "minimize"]).set_user_attr("objectives", ["f1", "params"])
    with pytest.raises(ConfigError, match="parameter 'objectives': study 'study' exists with objectives"):
        search.run(_config(tmp_path, tiny_teacher, objectives="f1"))
    assert MlflowClient().search_runs(["0"]) == []  # refused before any run was opened


def test_a_trial_whose_worker_was_killed_is_retried_from_its_checkpoint_and_the_count_goes_on(
        mlflow_store, tmp_path, tiny_teacher, monkeypatch):
    import os
    import signal
    import subprocess
    import sys
    import time

    from findistill.search import study as study_module

    config = _config(tmp_path, tiny_teacher, epochs=3, n_trials=3)
    command = [sys.executable, "-m", "findistill.cli", "search", "--teacher", tiny_teacher, "--space", config.space,
               "--n_trials", "3", "--max_sentences", "24", "--retrain", "false", "--storage", config.storage,
               "--study_name", "study"]
    worker = subprocess.Popen(command, cwd=tmp_path, env=dict(os.environ, MLFLOW_TRACKING_URI=mlflow_store),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    # epoch 1 of trial 0 saved to the end (the Trainer writes trainer_state.json last)
    while not list(tmp_path.glob(".findistill/search/study/trial-*/checkpoint-*/trainer_state.json")):
        assert worker.poll() is None and time.time() < deadline, "the worker ended before its first checkpoint"
        time.sleep(0.2)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()

    monkeypatch.setattr(study_module, "GRACE_S", 1)  # this worker takes a silent trial for dead after 1 s
    time.sleep(2)
    search.run(config)
    trials = optuna.load_study(study_name="study", storage=make_storage(config.storage)).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert trials[1].system_attrs["failed_trial"] == 0 and trials[1].params == trials[0].params
    client = MlflowClient()
    dead, retry = (client.get_run(t.user_attrs["mlflow_run_id"]) for t in trials[:2])
    assert dead.info.status == "FAILED" and "heartbeats" in dead.data.tags["findistill.fail_reason"]
    assert retry.data.tags["optuna.retry_of_trial"] == "0"
    assert "checkpoint-" in retry.data.tags["findistill.resumed_from"]  # went on from the killed trial's epoch


def test_a_teacher_whose_labels_do_not_fit_the_data_is_refused_before_any_run(mlflow_store, tmp_path, tiny_teacher,
                                                                               capsys):
    from findistill.cli import main as cli_main

    corpus = tmp_path / "train.conll"
    corpus.write_text("".join("Acme B-FUND\nrose O\n\nBeta B-FUND\nfell O\n\n" for _ in range(20)))
    config = _config(tmp_path, tiny_teacher)
    assert cli_main(["search", "--teacher", tiny_teacher, "--space", config.space, "--data", str(corpus),
                     "--storage", config.storage]) == 2
    assert "FUND" in capsys.readouterr().err
    assert MlflowClient().search_runs(["0"]) == []


BUDGET_SPACE = """
parameters:
  student_layers: {type: int, low: 1, high: 2}
fixed:
  epochs: 1
  batch_size: 8
  embedding_weights: frequency
retrain:
  epochs: 1
budget: {max_params: 0.3, fill: embedding_rank, multiple_of: 2}
"""


def test_a_budget_fills_each_trial_s_rank_and_the_retrained_student_keeps_it(mlflow_store, tmp_path, tiny_teacher):
    space = tmp_path / "budget.yaml"
    space.write_text(BUDGET_SPACE)
    config = search.Config(teacher=tiny_teacher, space=str(space), max_sentences=24, n_trials=2, retrain="true",
                           retrain_top=1, storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_name="budget",
                           sampler="random")
    parent = search.run(config)
    study = optuna.load_study(study_name="budget", storage=make_storage(config.storage))
    client = MlflowClient()
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        rank = trial.user_attrs["budget_filled"]["embedding_rank"]
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert rank > 0 and rank % 2 == 0 and run.data.params["embedding_rank"] == str(rank)
        # the count the budget predicted is the trained student's, and it is under the cap
        assert run.data.metrics["params_total"] == trial.user_attrs["student_params"]
    [retrained] = [r for r in client.search_runs([client.get_run(parent).info.experiment_id])
                   if r.data.tags.get("findistill.search_retrain") == "true"]
    best = study.best_trial
    assert retrained.data.params["embedding_rank"] == str(best.user_attrs["budget_filled"]["embedding_rank"])
    header = open(client.download_artifacts(parent, "search/trials.csv", str(tmp_path))).readline()
    assert {"embedding_rank", "student_params"} <= set(header.strip().split(","))


def test_a_trial_whose_student_the_budget_cannot_hold_is_pruned_before_it_trains(tmp_path, tiny_teacher):
    from findistill.data.splits import load_ner_data
    from findistill.search.study import OBJECTIVES

    space = tmp_path / "budget.yaml"
    space.write_text(BUDGET_SPACE.replace("fill: embedding_rank, multiple_of: 2", "").replace(
        "  embedding_weights: frequency\n", ""))
    config = search.Config(teacher=tiny_teacher, space=str(space), storage=f"sqlite:///{tmp_path / 'o.db'}")
    runner = search.TrialRunner(config, search.load_search_space(str(space)), [OBJECTIVES["f1"]],
                                load_ner_data("sample"), "study")
    trial = optuna.create_study(direction="maximize").ask()
    with pytest.raises(optuna.TrialPruned, match=r"its student has [\d,]+ parameters, above the budget's [\d,]+"):
        runner.fit_budget(trial, {"student_layers": 1})  # the teacher's whole embedding matrix is 95% of it
    assert trial.user_attrs["budget_filled"] == {} and trial.user_attrs["student_params"] > 0
