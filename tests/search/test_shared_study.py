"""A real shared study: two ``search`` workers started at once against one study on a throwaway
PostgreSQL server (the Optuna storage and the MLflow tracking store both in it)."""

from __future__ import annotations

import os
import subprocess
import sys

import optuna
from mlflow.tracking import MlflowClient

from findistill.search.study import make_storage

SPACE = """
parameters:
  learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
  transfer_data: {type: categorical, choices: [none, %s]}
fixed:
  student_layers: 1
  epochs: 1
  batch_size: 8
"""


def test_two_workers_share_one_study_every_trial_with_exactly_one_run_and_a_failing_trial_recorded(
        postgres, tiny_teacher, tmp_path, monkeypatch):
    import mlflow

    tracking = postgres.create_database("mlflow")
    storage_url = postgres.create_database("optuna")
    mlflow.set_tracking_uri(tracking)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    client = MlflowClient(tracking)
    experiment = client.create_experiment("shared", artifact_location=str(tmp_path / "artifacts"))
    blank = tmp_path / "blank.txt"  # a transfer corpus without one usable sentence: the trial using it fails
    blank.write_text("\n\n\n")
    space = tmp_path / "space.yaml"
    space.write_text(SPACE % blank)
    storage = make_storage(storage_url)
    study = optuna.create_study(study_name="shared", storage=storage, direction="maximize")
    study.set_user_attr("objectives", ["f1"])
    study.enqueue_trial({"learning_rate": 1e-3, "transfer_data": str(blank)})  # trial 0 fails on purpose
    for rate in (2e-4, 5e-4, 1e-3, 2e-3, 5e-3):  # then five that train, whichever worker takes them
        study.enqueue_trial({"learning_rate": rate, "transfer_data": "none"})

    command = [sys.executable, "-m", "findistill.cli", "search", "--teacher", tiny_teacher, "--space", str(space),
               "--n_trials", "6", "--max_sentences", "24", "--storage", storage_url, "--study_name", "shared",
               "--retrain", "auto", "--retrain_seeds", "1"]
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking, MLFLOW_EXPERIMENT_ID=experiment, OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    workers = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n\n".join(o[-3000:] for o in outputs)

    trials = optuna.load_study(study_name="shared", storage=storage).trials
    states = [t.state for t in trials]
    what = "\n".join(f"trial {t.number} {t.state.name} {t.params} {t.user_attrs.get('fail_reason', '')}"
                     for t in trials) + "\n\n" + "\n\n".join(o[-3000:] for o in outputs)
    assert optuna.trial.TrialState.RUNNING not in states and len(trials) >= 6
    assert len({t.number for t in trials}) == len(trials)

    runs = client.search_runs([experiment], max_results=1000)
    workers_runs = [r for r in runs if r.data.tags.get("findistill.stage") == "search"]
    trial_runs = [r for r in runs if r.data.tags.get("findistill.search_trial") == "true"]
    assert len(workers_runs) == 2 and all(r.info.status == "FINISHED" for r in workers_runs)
    # every trial has exactly one MLflow run, named by its user attribute, under one of the two workers
    assert sorted(int(r.data.tags["optuna.trial_number"]) for r in trial_runs) == sorted(t.number for t in trials)
    by_id = {r.info.run_id: r for r in trial_runs}
    assert sorted(by_id) == sorted(t.user_attrs["mlflow_run_id"] for t in trials)
    parents = {r.data.tags["mlflow.parentRunId"] for r in trial_runs}
    assert parents == {r.info.run_id for r in workers_runs}  # both workers ran trials

    failed = trials[0]
    assert failed.state == optuna.trial.TrialState.FAIL
    assert "contains no text" in failed.user_attrs["fail_reason"]
    failed_run = by_id[failed.user_attrs["mlflow_run_id"]]
    assert failed_run.info.status == "FAILED"
    assert "contains no text" in failed_run.data.tags["findistill.fail_reason"]
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) >= 5, what

    # the worker that ended the study retrained the best trial, once
    retrained = [r for r in runs if r.data.tags.get("findistill.search_retrain") == "true"]
    assert len(retrained) == 1 and "test_f1" in retrained[0].data.metrics
    best = optuna.load_study(study_name="shared", storage=storage).best_trial
    assert retrained[0].data.tags["optuna.trial_number"] == str(best.number)
