"""Parameters as MLflow passes them (strings) into typed stage configs; MLproject kept in sync."""

import dataclasses
import typing

import pytest
import yaml

from findistill.cli import main as cli_main, parse_argv
from findistill.config import ConfigError, parse_params
from findistill.cli import STAGES
from findistill.stages import EvaluateConfig, FinetuneConfig

from conftest import REPO


def test_strings_become_typed_values():
    config = parse_params(FinetuneConfig, {"epochs": "3.0", "learning_rate": "2e-5", "keep_checkpoints": "Yes"})
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
        parse_params(FinetuneConfig, params)
    assert fragment in str(err.value)


def test_evaluate_requires_a_model():
    with pytest.raises(ConfigError, match="parameter 'model'"):
        parse_params(EvaluateConfig, {})


def test_argv_pairs():
    assert parse_argv(["--a", "1", "--b=x y", "--with-dash", ""]) == {"a": "1", "b": "x y", "with_dash": ""}
    with pytest.raises(ConfigError):
        parse_argv(["--a"])
    with pytest.raises(ConfigError):
        parse_argv(["a", "1"])


def test_cli_reports_user_errors_in_one_line(capsys):
    assert cli_main(["finetune", "--epochs", "zero"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "parameter 'epochs'" in err
    assert cli_main(["nonsense"]) == 2


def test_mlproject_declares_every_config_field_with_its_default():
    project = yaml.safe_load((REPO / "MLproject").read_text())
    assert set(project["entry_points"]) == set(STAGES)
    for name, (_, config_class) in STAGES.items():
        declared = project["entry_points"][name]["parameters"]
        fields = {f.name: f for f in dataclasses.fields(config_class)}
        assert set(declared) == set(fields), name
        command = project["entry_points"][name]["command"]
        hints = typing.get_type_hints(config_class)
        for field_name, field in fields.items():
            assert f"--{field_name} {{{field_name}}}" in command
            if "default" not in declared[field_name]:
                continue  # required (no default) in MLproject
            default = declared[field_name]["default"]
            if hints[field_name] is bool:
                assert str(default).lower() == str(field.default).lower(), (name, field_name)
            else:
                assert hints[field_name](default) == field.default, (name, field_name)
