"""Study helpers: objectives, the trials a study hands on for retraining, storage URLs in logs."""

from __future__ import annotations

import optuna
import pytest

from findistill.config import ValueProblem
from findistill.search.study import chosen_trials, make_pruner, parse_objectives, redact


def test_objectives_are_f1_alone_or_f1_with_one_cost():
    assert [o.metric for o in parse_objectives("f1,latency")] == ["validation_f1", "latency_cpu_b1_ms_p50"]
    assert [o.direction for o in parse_objectives("f1, params")] == ["maximize", "minimize"]
    for bad in ("latency", "f1,f1", "f1,latency,params", "", "f1,speed"):
        with pytest.raises(ValueProblem, match="objectives"):
            parse_objectives(bad)


def test_two_objective_studies_hand_on_pareto_trials_spread_over_the_front_and_never_prune():
    study = optuna.create_study(directions=["maximize", "minimize"])
    front = [(0.9, 30.0), (0.85, 20.0), (0.8, 12.0), (0.7, 8.0), (0.6, 5.0)]
    for values in front + [(0.5, 40.0), (0.84, 25.0)]:  # the last two are dominated
        study.add_trial(optuna.trial.create_trial(values=list(values)))
    picked = [tuple(t.values) for t in chosen_trials(study, 3)]
    assert picked == [(0.9, 30.0), (0.8, 12.0), (0.6, 5.0)]  # both ends and the middle, best F1 first
    assert [tuple(t.values) for t in chosen_trials(study, 10)] == front
    assert isinstance(make_pruner("median", 2), optuna.pruners.NopPruner)
    assert isinstance(make_pruner("median", 1), optuna.pruners.MedianPruner)
    single = optuna.create_study(direction="maximize")
    assert chosen_trials(single, 3) == []
    for value in (0.3, 0.7, 0.5):
        single.add_trial(optuna.trial.create_trial(value=value))
    assert [t.value for t in chosen_trials(single, 3)] == [0.7]


def test_storage_urls_are_logged_without_their_password():
    assert redact("postgresql+psycopg://ann:s3cret@db:5432/optuna") == "postgresql+psycopg://ann:***@db:5432/optuna"
    assert redact("sqlite:////tmp/optuna.db") == "sqlite:////tmp/optuna.db"
    assert redact("postgresql+psycopg://ann@db/optuna") == "postgresql+psycopg://ann@db/optuna"
