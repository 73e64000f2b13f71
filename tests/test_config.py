"""Parameters as MLflow passes them (strings) into typed stage configs; MLproject kept in sync."""

import pytest

from findistill.config import ConfigError, parse_params
from findistill.stages import evaluate, finetune


def test_strings_become_typed_values():
    config = parse_params(finetune.Config, {"epochs": "3.0", "learning_rate": "2e-5", "keep_checkpoints": "Yes"})
    assert config.epochs == 3 and isinstance(config.epochs, int)
    assert config.learning_rate == 2e-5
    assert config.keep_checkpoints is True


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"epochs": "3.5"}, "parameter 'epochs': expected an integer"),
        ({"epochs": "many"}, "parameter 'epochs': expected an integer"),
        ({"epochs": "0"}, "parameter 'epochs': expected an integer >= 1"),
        ({"learning_rate": "fast"}, "parameter 'learning_rate': expected a number"),
        ({"keep_checkpoints": "maybe"}, "parameter 'keep_checkpoints': expected true/false"),
        ({"validation_fraction": "0.9"}, "parameter 'validation_fraction'"),
        ({"eval_split": "dev"}, "parameter 'eval_split'"),
        ({"epoch": "3"}, "unknown parameter(s) epoch"),
    ],
)
def test_bad_values_name_the_parameter(params, fragment):
    with pytest.raises(ConfigError) as err:
        parse_params(finetune.Config, params)
    assert fragment in str(err.value)


def test_evaluate_requires_a_model():
    with pytest.raises(ConfigError, match="parameter 'model'"):
        parse_params(evaluate.Config, {})


def test_a_library_value_problem_names_the_parameter_the_user_set():
    from findistill.config import ValueProblem, as_parameters

    with pytest.raises(ConfigError, match=r"^parameter 'tokenizer_vocab_size': expected at least 1999$"):
        with as_parameters(vocab_size="tokenizer_vocab_size"):
            raise ValueProblem("vocab_size", "expected at least 1999")
    with pytest.raises(ConfigError, match=r"^parameter 'method': expected one of fvt, pvt$"):
        with as_parameters(vocab_size="tokenizer_vocab_size"):  # unmapped arguments keep their name
            raise ValueProblem("method", "expected one of fvt, pvt")
