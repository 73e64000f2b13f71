"""``main``: strategies, the stage cache, reuse and resume."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from conftest import shared_corpus
from mlflow.tracking import MlflowClient

from findistill.cli import main as cli_main
from findistill.config import ConfigError, parse_params
from findistill.stages import distill, finetune, main
from findistill.stages.main import STRATEGIES
from findistill.stages.pipeline import cache_key


def test_an_unknown_strategy_is_refused_with_the_valid_ones_listed(capsys):
    with pytest.raises(ConfigError) as err:
        parse_params(main.Config, {"strategy": "adapt-distill"})
    assert "'strategy'" in str(err.value) and "adapt-distill" in str(err.value)
    assert all(name in str(err.value) for name in STRATEGIES)
    assert cli_main(["main", "--strategy", "distil"]) == 2
    assert "distill-adapt-distill" in capsys.readouterr().err


def test_a_student_deeper_than_the_teacher_is_refused_before_any_run(mlflow_store, tiny_encoder_dir, capsys):
    assert cli_main(["main", "--model", str(tiny_encoder_dir), "--student_layers", "3"]) == 2
    assert "student_layers" in capsys.readouterr().err
    assert mlflow.search_runs(search_all_experiments=True).empty


def test_strategies_that_distil_on_general_text_need_general_data():
    with pytest.raises(ConfigError, match="general_data"):
        main.Config(strategy="distill-adapt-finetune")
    main.Config(strategy="distill-adapt-distill", general_data="../shared/data/wikigold")  # accepted


def test_cache_key_changes_with_an_upstream_run_or_a_parameter_and_not_otherwise(tmp_path):
    base = distill.Config(teacher="runs:/aaaa/model", data="runs:/bbbb/data")
    key = cache_key("distill", base, "code1")
    assert cache_key("distill", distill.Config(teacher="runs:/aaaa/model", data="runs:/bbbb/data"), "code1") == key
    assert cache_key("distill", distill.Config(teacher="runs:/cccc/model", data="runs:/bbbb/data"), "code1") != key
    assert cache_key("distill", distill.Config(teacher="runs:/aaaa/model", data="runs:/dddd/data"), "code1") != key
    assert cache_key("distill", distill.Config(teacher="runs:/aaaa/model", data="runs:/bbbb/data",
                                              temperature=4.0), "code1") != key
    assert cache_key("distill", base, "code2") != key  # new code
    assert cache_key("finetune", base, "code1") != key
    # where checkpoints go or which device runs it does not change the result
    assert cache_key("distill", distill.Config(teacher="runs:/aaaa/model", data="runs:/bbbb/data",
                                              device="cpu", checkpoint_dir=str(tmp_path)), "code1") == key
    # a local input file is fingerprinted: editing it changes the key
    corpus = tmp_path / "train.conll"
    corpus.write_text("Acme B-ORG\n\n", encoding="utf-8")
    before = cache_key("finetune", finetune.Config(data=str(corpus)), "code1")
    assert cache_key("finetune", finetune.Config(data=str(corpus)), "code1") == before
    corpus.write_text("Acme B-ORG\nCorp I-ORG\n\n", encoding="utf-8")
    assert cache_key("finetune", finetune.Config(data=str(corpus)), "code1") != before


def _main_args(model, *extra: str) -> list[str]:
    return ["main", "--model", str(model), "--epochs", "1", "--learning_rate", "0.003", "--student_learning_rate",
            "0.003", "--adapt_epochs", "1", "--general_epochs", "1", "--max_sentences", "40", "--max_length", "64",
            "--tokenizer", "domain", "--tokenizer_vocab_size", "2000", "--student_layers", "1",
            "--measure_resources", "false", "--transfer_data", "none", *extra]


def _children(parent_id: str):
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")
    return dict(zip(runs["tags.findistill.step"], runs.run_id))


def test_main_reuses_finished_stages_and_resumes_after_a_failure(mlflow_store, tiny_encoder_dir, monkeypatch,
                                                                 capsys):
    real_run = distill.run

    def crash(config):  # a stage that dies half-way (as a killed process would leave it)
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(distill, "run", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        cli_main(_main_args(tiny_encoder_dir, "--strategy", "adapt-finetune-distill",
                            "--registered_model_name", "fin-ner"))
    assert "stage 'distill-student' (distill) failed" in capsys.readouterr().out
    first = mlflow.search_runs(search_all_experiments=True)
    done_before = set(first[first.status == "FINISHED"]["tags.findistill.step"].dropna())
    assert done_before == {"prepare", "analyze_tokenization", "train_tokenizer", "adapt-teacher", "finetune-teacher"}

    monkeypatch.setattr(distill, "run", real_run)
    assert cli_main(_main_args(tiny_encoder_dir, "--strategy", "adapt-finetune-distill",
                               "--registered_model_name", "fin-ner")) == 0
    out = capsys.readouterr().out
    for step in done_before:
        assert f"[main] {step}: reusing run" in out
    assert "[main] distill-student: running distill" in out
    assert "tags a sentence" in out
    parents = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`findistill.stage` = 'main'",
                                 order_by=["attributes.start_time DESC"])
    second = parents.iloc[0]
    assert second["metrics.student_test_f1"] >= 0 and second["metrics.teacher_test_f1"] >= 0
    steps = mlflow.artifacts.load_dict(f"runs:/{second.run_id}/pipeline.json")
    assert [s["step"] for s in steps] == ["prepare", "analyze_tokenization", "train_tokenizer", "adapt-teacher",
                                          "finetune-teacher", "distill-student", "evaluate-student"]
    assert [s["reused"] for s in steps] == [True] * 5 + [False] * 2
    versions = MlflowClient().search_model_versions("name='fin-ner'")
    assert sorted(v.tags["role"] for v in versions) == ["student", "teacher"]

    # a third run with the same inputs reuses every stage and registers nothing twice
    assert cli_main(_main_args(tiny_encoder_dir, "--strategy", "adapt-finetune-distill",
                               "--registered_model_name", "fin-ner")) == 0
    out = capsys.readouterr().out
    assert "7 stages, 7 reused" in out
    assert len(MlflowClient().search_model_versions("name='fin-ner'")) == 2
    # a changed student parameter reruns the student only
    assert cli_main(_main_args(tiny_encoder_dir, "--strategy", "adapt-finetune-distill", "--temperature", "3")) == 0
    assert "7 stages, 5 reused" in capsys.readouterr().out


def test_distill_adapt_distill_chains_general_distillation_and_both_adaptations(mlflow_store, tiny_encoder_dir,
                                                                                capsys):
    general = shared_corpus("wikigold") / "wikigold.conll.txt"
    assert cli_main(_main_args(tiny_encoder_dir, "--strategy", "distill-adapt-distill", "--general_data",
                               str(general))) == 0
    parent = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`findistill.stage` = 'main'").iloc[0]
    children = _children(parent.run_id)
    assert set(children) == {"prepare", "analyze_tokenization", "train_tokenizer", "adapt-teacher", "finetune-teacher",
                             "general-distill-student", "adapt-student", "distill-student", "evaluate-student"}
    general_run = mlflow.get_run(children["general-distill-student"])
    assert general_run.data.tags["findistill.adapt_mode"] == "general-distillation"
    assert general_run.data.params["general_data"] == str(general)
    student = mlflow.get_run(children["distill-student"])
    assert student.data.params["student_init"] == f"runs:/{children['adapt-student']}/model"
    assert student.data.tags["findistill.student_vocab_size"] == "2000"  # the domain vocabulary came through
    assert "test_f1" in mlflow.get_run(children["evaluate-student"]).data.metrics


def test_a_bad_tokenizer_size_names_mains_own_parameter(mlflow_store, tiny_encoder_dir, capsys):
    assert cli_main(_main_args(tiny_encoder_dir, "--strategy", "finetune-distill", "--tokenizer_vocab_size", "50")) == 2
    err = capsys.readouterr().err
    assert "parameter 'tokenizer_vocab_size'" in err and "parameter 'vocab_size'" not in err


def test_main_with_a_search_ends_with_the_retrained_best_trial_as_its_student(mlflow_store, tiny_encoder_dir,
                                                                               tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("parameters:\n  temperature: {type: float, low: 1.0, high: 4.0}\n"
                     "fixed:\n  student_layers: 1\n  epochs: 1\n  learning_rate: 0.003\n")
    assert cli_main(_main_args(tiny_encoder_dir, "--search", str(space), "--search_trials", "2",
                               "--tokenizer", "same")) == 0
    parent = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`findistill.stage` = 'main'").iloc[0]
    steps = mlflow.artifacts.load_dict(f"runs:/{parent.run_id}/pipeline.json")
    assert [s["step"] for s in steps] == ["prepare", "analyze_tokenization", "finetune-teacher", "search-student",
                                          "evaluate-student"]
    search_run = MlflowClient().get_run(steps[3]["run_id"])
    best = search_run.data.tags["findistill.best_model_uri"]
    evaluated = MlflowClient().get_run(steps[4]["run_id"])
    assert evaluated.data.params["model"] == best  # the student main evaluates is the search's choice
    trials = MlflowClient().search_runs([search_run.info.experiment_id],
                                        filter_string=f"tags.`mlflow.parentRunId` = '{search_run.info.run_id}' "
                                                      "and tags.`findistill.search_trial` = 'true'")
    assert len(trials) == 2
    with pytest.raises(ConfigError, match="parameter 'search'"):
        main.Config(strategy="distill-adapt-distill", general_data="x", search=str(space))


def test_main_ends_with_a_quantized_student_measured_beside_teacher_and_student(mlflow_store, tiny_encoder_dir,
                                                                                capsys):
    assert cli_main(_main_args(tiny_encoder_dir, "--tokenizer", "same", "--quantize", "onnx", "--measure_resources",
                               "true", "--registered_model_name", "fin-ner")) == 0
    parent = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`findistill.stage` = 'main'").iloc[0]
    steps = mlflow.artifacts.load_dict(f"runs:/{parent.run_id}/pipeline.json")
    assert [s["step"] for s in steps][-2:] == ["evaluate-student", "quantize-student"]
    quantized = MlflowClient().get_run(steps[-1]["run_id"])
    assert quantized.data.params["model"] == mlflow.get_run(steps[-2]["run_id"]).data.params["model"]
    assert quantized.data.metrics["f1_delta_vs_source"] == 0  # fp32 ONNX: the student's own predictions
    costs = mlflow.artifacts.load_dict(f"runs:/{parent.run_id}/costs.json")
    assert set(costs) == {"teacher", "student", "quantized"}
    assert costs["quantized"]["params_total"] == costs["student"]["params_total"]
    metrics = parent["metrics.quantized_test_f1"], parent["metrics.quantized_speedup_cpu_b1"]
    assert metrics[0] == parent["metrics.student_test_f1"] and metrics[1] > 0
    table = mlflow.artifacts.load_text(f"runs:/{parent.run_id}/pipeline.md")
    assert "| quantized |" in table and "Quantized student vs teacher:" in table
    versions = {v.tags["role"]: v for v in MlflowClient().search_model_versions("name='fin-ner'")}
    assert sorted(versions) == ["quantized", "student", "teacher"]
    for role, version in versions.items():  # tagged with the costs measured side by side
        assert float(version.tags["latency_cpu_b1_ms"]) == pytest.approx(costs[role]["latency_cpu_b1_ms_p50"],
                                                                         rel=1e-3)
    assert versions["quantized"].tags["runtime"] == "onnxruntime-fp32"

    # main ends with the comparison of its three models: the table, the dashboard, here and in dashboards/
    rows = {row["role"]: row for row in mlflow.artifacts.load_dict(f"runs:/{parent.run_id}/compare/table.json")}
    assert sorted(rows) == ["quantized", "student", "teacher"]
    assert rows["student"]["f1_mean"] == parent["metrics.student_test_f1"]
    assert rows["quantized"]["latency_cpu_b1_ms_p50"] == costs["quantized"]["latency_cpu_b1_ms_p50"]
    assert "Plotly" in mlflow.artifacts.load_text(f"runs:/{parent.run_id}/compare/dashboard.html")
    assert Path(f"dashboards/main-{parent.run_id[:8]}.html").is_file()
    description = parent["tags.mlflow.note.content"]
    assert description.startswith("Strategy finetune-distill") and "Quantized (onnx)" in description


def test_a_refused_variant_leaves_main_with_its_fp32_student(mlflow_store, tiny_encoder_dir, monkeypatch, capsys):
    from findistill.runtimes.variants import QualityError
    from findistill.stages import quantize

    def refuse(*args):
        raise QualityError("onnx-int8 loses 2.86 F1 points on validation against its source")

    monkeypatch.setattr(quantize, "_guard", refuse)
    # a step of an earlier main that was killed: main marks it KILLED before it looks for runs to reuse
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    orphan = MlflowClient().create_run("0", tags={"findistill.host": socket.gethostname(),
                                                  "findistill.pid": str(done.pid)}).info.run_id
    assert cli_main(_main_args(tiny_encoder_dir, "--tokenizer", "same", "--quantize", "onnx-int8",
                               "--registered_model_name", "fin-ner")) == 0
    assert MlflowClient().get_run(orphan).info.status == "KILLED"
    out = capsys.readouterr().out
    assert "The onnx-int8 variant of the student was refused: onnx-int8 loses 2.86 F1 points" in out
    assert "resumes this one" not in out  # a refusal is not a crash to resume
    parent = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`findistill.stage` = 'main'").iloc[0]
    assert parent.status == "FINISHED" and "2.86" in parent["tags.findistill.quantize_refused"]
    assert "refused" in mlflow.artifacts.load_text(f"runs:/{parent.run_id}/pipeline.md")
    roles = sorted(v.tags["role"] for v in MlflowClient().search_model_versions("name='fin-ner'"))
    assert roles == ["student", "teacher"]
