"""Search spaces: every problem of a space file found before anything runs, one line each naming the
entry; conditional parameters sampled only where they matter."""

from __future__ import annotations

import optuna
import pytest
import yaml

from findistill.config import ConfigError
from findistill.search.space import parse_space
from findistill.stages.search import SEARCHABLE, check_values, load_search_space


def _parse(payload):
    return parse_space(payload, "space.yaml", allowed=SEARCHABLE, check=check_values)


def _problems(payload) -> list[str]:
    with pytest.raises(ConfigError) as err:
        _parse(payload)
    head, *lines = str(err.value).splitlines()
    assert head.startswith("search space space.yaml:") and head.endswith(f"{len(lines)} problem(s)")
    return [line.removeprefix("  - ") for line in lines]


def test_the_default_space_is_valid_and_orders_parents_before_the_parameters_they_condition(tmp_path):
    from conftest import REPO

    space = load_search_space(str(REPO / "configs" / "search-space.yaml"))
    names = space.names()
    assert {"temperature", "kd_weight", "ce_weight", "hidden_weight", "student_layers", "vocab_method",
            "learning_rate", "transfer_data"} <= set(names)
    for child, parent in (("vocab_size", "vocab_method"), ("transfer_ratio", "transfer_data"),
                          ("hidden_layers", "hidden_weight")):
        assert names.index(parent) < names.index(child)
    assert space.fixed["epochs"] < space.retrain["epochs"]
    # the budgeted space: its fixed frequency weighting is valid beside the searched ranks
    budgeted = load_search_space(str(REPO / "configs" / "search-budget.yaml"))
    assert budgeted.budget.fill == "intermediate_size" and budgeted.fixed["embedding_weights"] == "frequency"
    assert "embedding_rank" in budgeted.names()


def test_each_kind_of_mistake_is_reported_on_its_own_line_naming_the_entry():
    problems = _problems({
        "parameters": {
            "temperture": {"type": "float", "low": 1, "high": 4},                  # unknown parameter
            "kd_weight": {"type": "float", "low": 2.0, "high": 0.5},               # low > high
            "ce_weight": {"type": "float", "low": 1.0, "high": 1.0},               # empty range
            "student_layers": {"type": "integer", "low": 1, "high": 3},            # wrong type
            "learning_rate": {"type": "float", "low": "1e-4", "high": 1e-3},       # bound not a number
            "epochs": {"type": "int", "low": 1.5, "high": 4},                       # int with a fractional bound
            "hidden_loss": {"type": "categorical", "choices": ["mse", "l1"]},      # a choice distill rejects
            "temperature": {"type": "float", "low": 0.0, "high": 4.0},             # a range end distill rejects
            "transfer_ratio": {"type": "float", "low": 0.0, "high": 2.0, "log": True},  # log scale from 0
            "word_pooling": {"type": "categorical", "choices": []},                 # no choices
        },
        "fixed": {"batch_size": 0},                                                 # a fixed value distill rejects
        "retrain": {"epochs": 6},
        "extra": {},                                                                # unknown section
    })
    expected = {
        "extra": "unknown section",
        "parameters.temperture": "unknown parameter",
        "parameters.kd_weight": "low 2.0 > high 0.5",
        "parameters.ce_weight": "empty range",
        "parameters.student_layers": "'type' must be one of float, int, categorical",
        "parameters.learning_rate": "'low' and 'high' must both be numbers",
        "parameters.epochs": "whole-number bounds",
        "parameters.transfer_ratio": "log scale needs low > 0",
        "parameters.word_pooling": "non-empty list",
    }
    for entry, words in expected.items():
        assert [p for p in problems if p.startswith(f"{entry}:") and words in p], (entry, problems)
    assert len(problems) == len(expected)  # the stage's verdicts come only once the structure is sound


def test_values_the_stage_would_reject_are_named_with_the_stage_s_reason():
    problems = _problems({
        "parameters": {
            "hidden_loss": {"type": "categorical", "choices": ["mse", "l1"]},
            "temperature": {"type": "float", "low": 0.0, "high": 4.0},
            "vocab_method": {"type": "categorical", "choices": ["same", "bpe-ish"]},
        },
        "fixed": {"epochs": 2},
        "retrain": {"batch_size": 0},
    })
    assert problems == [
        "retrain: parameter 'batch_size': expected an integer >= 1, got 0",
        "parameters.hidden_loss: 'l1' is rejected: parameter 'hidden_loss': expected one of mse, cosine, got 'l1'",
        "parameters.temperature: 0.0 is rejected: parameter 'temperature': expected a positive number, got 0.0",
        "parameters.vocab_method: 'bpe-ish' is rejected: parameter 'vocab_method': expected one of same, train, "
        "trim, extend, got 'bpe-ish'",
    ]


def test_a_parameter_the_search_decides_itself_cannot_be_searched():
    problems = _problems({"parameters": {"seed": {"type": "int", "low": 1, "high": 5},
                                         "eval_split": {"type": "categorical", "choices": ["test"]}}})
    assert [p.split(":")[0] for p in problems] == ["parameters.eval_split", "parameters.seed"]
    assert all("unknown parameter" in p for p in problems)


def test_a_file_that_is_not_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("parameters:\n  temperature: {type: float, low: 1\n  kd_weight: 2\n")
    with pytest.raises(ConfigError, match=r"space.yaml line \d+: not valid YAML"):
        load_search_space(str(path))
    with pytest.raises(ConfigError, match="parameter 'space': no search-space file"):
        load_search_space(str(tmp_path / "missing.yaml"))


def test_conditional_parameters_are_sampled_only_where_their_parent_makes_them_matter():
    space = _parse(yaml.safe_load("""
parameters:
  vocab_size: {type: categorical, choices: [8000, 16000]}
  vocab_method: {type: categorical, choices: [same, trim]}
  transfer_ratio: {type: float, low: 0.5, high: 2.0}
  transfer_data: {type: categorical, choices: [none, augment]}
  temperature: {type: float, low: 1.0, high: 8.0, log: true}
"""))
    plain = space.suggest(optuna.trial.FixedTrial({"vocab_method": "same", "transfer_data": "none",
                                                   "temperature": 2.0}))
    assert plain == {"vocab_method": "same", "transfer_data": "none", "temperature": 2.0}
    full = space.suggest(optuna.trial.FixedTrial({"vocab_method": "trim", "vocab_size": 8000,
                                                  "transfer_data": "augment", "transfer_ratio": 1.5,
                                                  "temperature": 2.0}))
    assert full == {"vocab_method": "trim", "transfer_data": "augment", "vocab_size": 8000, "transfer_ratio": 1.5,
                    "temperature": 2.0}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(12):
        trial = study.ask()
        values = space.suggest(trial)
        assert ("vocab_size" in values) == (values["vocab_method"] == "trim")
        assert ("transfer_ratio" in values) == (values["transfer_data"] == "augment")
        assert 1.0 <= values["temperature"] <= 8.0
        study.tell(trial, 0.0)
    assert {t.params["vocab_method"] for t in study.trials} == {"same", "trim"}


def test_a_built_tokenizer_and_a_vocabulary_built_per_trial_cannot_both_be_given(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("parameters:\n  vocab_method: {type: categorical, choices: [same, trim]}\n"
                    "fixed:\n  tokenizer: runs:/abc/tokenizer\n")
    with pytest.raises(ConfigError, match="either 'tokenizer' or 'vocab_method'"):
        load_search_space(str(path))


@pytest.mark.parametrize("budget, problem", [
    ({"max_params": 1.5}, "budget.max_params: expected a share of the teacher's parameters in (0, 1] or a whole "
                          "count > 1, got 1.5"),
    ({"max_params": 0.3, "fill": "student_layers"}, "budget.fill: expected one of intermediate_size, embedding_rank"),
    ({"max_params": 0.3, "multiple_of": 0}, "budget.multiple_of: expected an integer >= 1, got 0"),
    ({"max_params": 0.3, "cap": 2}, "budget: unknown key(s) cap"),
    ({"max_params": 0.3, "fill": "intermediate_size"}, "parameters.intermediate_size: the budget fills it"),
])
def test_a_budget_s_mistakes_are_named(budget, problem):
    payload = {"parameters": {"intermediate_size": {"type": "int", "low": 256, "high": 768},
                              "temperature": {"type": "float", "low": 1.0, "high": 4.0}},
               "budget": budget}
    with pytest.raises(ConfigError) as err:
        _parse(payload)
    assert str(err.value).startswith(f"search space space.yaml: {problem}")


def test_a_filled_rank_stands_in_for_the_rank_the_fixed_values_need():
    payload = {"parameters": {"student_layers": {"type": "int", "low": 2, "high": 6}},
               "fixed": {"embedding_weights": "frequency", "intermediate_size": 512},
               "budget": {"max_params": 0.3, "fill": "embedding_rank", "multiple_of": 8}}
    space = _parse(payload)  # frequency weights need a rank: the filled one counts, not the default 0
    assert space.budget.fill == "embedding_rank" and space.budget.cap(1000) == 300
    assert "budget: students of at most 30% of the teacher's parameters; embedding_rank filled" in space.describe()
    with pytest.raises(ConfigError, match="embedding_weights"):
        _parse({**payload, "budget": {"max_params": 0.3}})  # without the budget's rank, no rank at all


def test_a_budget_for_students_not_cut_from_the_teacher_is_refused(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"parameters": {"temperature": {"type": "float", "low": 1.0, "high": 4.0}},
                                    "fixed": {"student_init": "packaged:all-MiniLM-L6-v2"},
                                    "budget": {"max_params": 0.3}}))
    with pytest.raises(ConfigError, match="a budget counts students cut from the teacher; leave student_init"):
        load_search_space(str(path))
