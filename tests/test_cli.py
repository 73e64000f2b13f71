"""Parameters as MLflow passes them (strings) into typed stage configs; MLproject kept in sync."""

import dataclasses
import typing

import pytest
import yaml
from conftest import REPO

from findistill.cli import main as cli_main
from findistill.cli import parse_argv
from findistill.config import ConfigError
from findistill.stages import STAGES


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
    for name, module in STAGES.items():
        config_class = module.Config
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
