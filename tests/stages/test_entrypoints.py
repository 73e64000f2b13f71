"""The stages end to end against a temporary SQLite tracking store.

``test_mlflow_run_chain`` drives the real entry points through ``mlflow run`` (a subprocess per
stage, as users run them); the others call the stages in-process, which is faster.
"""


import mlflow
import pytest
from conftest import mlflow_run as _mlflow_run
from conftest import shared_corpus
from mlflow.tracking import MlflowClient

from findistill.cli import main as cli_main
from findistill.costs.latency import RESOURCE_METRICS
from findistill.evaluation.predict import tag_texts
from findistill.models.loading import load_token_classifier, load_tokenizer
from findistill.tracking.runs import localize_model

pytestmark = pytest.mark.integration


def _only_run(experiment: str, stage: str):
    runs = mlflow.search_runs(experiment_names=[experiment], filter_string=f"tags.`findistill.stage` = '{stage}'")
    assert len(runs) == 1, runs
    return runs.iloc[0]


def test_mlflow_run_chain(mlflow_store, tiny_encoder_dir, tmp_path):
    """prepare -> finetune -> evaluate through `mlflow run` on a slice of the SEC corpus."""
    experiment = "integration"
    mlflow.create_experiment(experiment, artifact_location=str(tmp_path / "artifacts"))
    sec = shared_corpus("sec-filings")

    done = _mlflow_run("prepare", mlflow_store, experiment, data=sec, max_sentences=60)
    assert done.returncode == 0, done.stderr[-3000:]
    prepared = _only_run(experiment, "prepare")
    assert prepared["metrics.test_sentences"] == 60 and prepared["metrics.train_sentences"] == 60
    assert prepared["params.data"] == str(sec)

    data_uri = f"runs:/{prepared.run_id}/data"
    done = _mlflow_run(
        "finetune", mlflow_store, experiment, data=data_uri, model=tiny_encoder_dir, epochs=2,
        learning_rate=0.003, batch_size=8, max_length=64,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    tuned = _only_run(experiment, "finetune")
    assert tuned.status == "FINISHED"
    history = MlflowClient().get_metric_history(tuned.run_id, "val_f1")
    assert [m.step for m in history] == [1, 2]
    for name in RESOURCE_METRICS:
        assert f"metrics.{name}" in tuned.index and tuned[f"metrics.{name}"] >= 0, name
    assert tuned["metrics.params_total"] > tuned["metrics.params_embedding"] > tuned["metrics.params_encoder"] > 0
    assert 0.0 <= tuned["metrics.test_f1"] <= 1.0
    assert {"test_f1_PER", "test_precision_ORG", "test_support_LOC"} <= {
        k.removeprefix("metrics.") for k in tuned.index}
    artifacts = {a.path for a in MlflowClient().list_artifacts(tuned.run_id, "evaluation")}
    assert "evaluation/test_report.txt" in artifacts and "evaluation/resources.md" in artifacts

    done = _mlflow_run("evaluate", mlflow_store, experiment, model=f"runs:/{tuned.run_id}/model", data=data_uri,
                       max_length=64)
    assert done.returncode == 0, done.stderr[-3000:]
    evaluated = _only_run(experiment, "evaluate")
    # the model logged to MLflow and loaded back scores exactly what the trained model scored
    assert evaluated["metrics.test_f1"] == pytest.approx(tuned["metrics.test_f1"], abs=1e-9)

    served = mlflow.pyfunc.load_model(f"runs:/{tuned.run_id}/model")
    texts = ["The Borrower , Acme Holdings Inc. , is located in Dallas , Texas .", ""]
    hf_dir = localize_model(f"runs:/{tuned.run_id}/model")
    expected = tag_texts(load_token_classifier(hf_dir), load_tokenizer(hf_dir), texts, max_length=64)
    assert served.predict({"text": texts}) == expected  # the served model answers as the trained one


def test_bad_input_fails_through_mlflow_run_with_file_and_line(mlflow_store, tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("Acme B-ORG\nCorp X-FOO\n\n", encoding="utf-8")
    done = _mlflow_run("prepare", mlflow_store, "bad-input", data=bad)
    assert done.returncode != 0
    assert f"{bad}:2" in done.stderr and "X-FOO" in done.stderr
    runs = mlflow.search_runs(experiment_names=["bad-input"])
    assert set(runs.status) <= {"FAILED"}  # nothing is recorded as a finished run


def test_stage_errors_end_before_any_run(mlflow_store, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert cli_main(["finetune", "--data", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    assert mlflow.search_runs(search_all_experiments=True).empty


def test_distill_through_mlflow_run_with_a_domain_tokenizer(mlflow_store, tiny_encoder_dir, tmp_path, monkeypatch):
    """finetune a tiny teacher and build a domain tokenizer in-process, then `mlflow run -e distill`:
    a 1-layer student with the other vocabulary, KD + augmented transfer set, on a SEC slice."""
    experiment = "distill-integration"
    mlflow.create_experiment(experiment, artifact_location=str(tmp_path / "artifacts"))
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", experiment)  # for the in-process stages (set_experiment would leak)
    sec = shared_corpus("sec-filings")
    common = ["--data", str(sec), "--max_sentences", "60", "--max_length", "64"]
    assert cli_main(["finetune", "--model", str(tiny_encoder_dir), "--epochs", "1", "--learning_rate", "0.003",
                     "--measure_resources", "false", *common]) == 0
    teacher = _only_run(experiment, "finetune")
    assert cli_main(["train_tokenizer", "--method", "train", "--vocab_size", "400", *common[:4]]) == 0
    tokenizer_run = _only_run(experiment, "train_tokenizer")

    done = _mlflow_run(
        "distill", mlflow_store, experiment, teacher=f"runs:/{teacher.run_id}/model", data=sec, max_sentences=60,
        max_length=64, student_layers=1, tokenizer=f"runs:/{tokenizer_run.run_id}/tokenizer", epochs=2,
        learning_rate=0.003, transfer_data="augment", transfer_ratio=0.5, registered_model_name="fin-ner-student",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    student = _only_run(experiment, "distill")
    assert student.status == "FINISHED"
    assert student["tags.findistill.student_layers_from"] == "0" and student["tags.findistill.role"] == "student"
    assert int(student["tags.findistill.student_vocab_size"]) <= 400
    client = MlflowClient()
    for name in ("val_f1", "train_loss_kd", "train_loss_ce"):
        assert [m.step for m in client.get_metric_history(student.run_id, name)] == [1, 2], name
    assert student["metrics.transfer_sentences"] == 30  # 0.5 x the 60 training sentences
    for name in RESOURCE_METRICS:
        assert f"metrics.{name}" in student.index, name
    teacher_eval = mlflow.get_run(teacher.run_id)  # the teacher measured no resources, but counted its parameters
    assert "latency_cpu_b1_ms_p50" not in teacher_eval.data.metrics
    assert abs(teacher_eval.data.metrics["params_total"] / _param_count(tiny_encoder_dir) - 1) < 0.01
    assert student["metrics.params_total"] < 0.6 * teacher_eval.data.metrics["params_total"]
    version = client.get_model_version("fin-ner-student", "1")
    assert version.tags["role"] == "student" and version.run_id == student.run_id
    served = mlflow.pyfunc.load_model(f"runs:/{student.run_id}/model")
    (spans,) = served.predict({"text": ["Acme Holdings Inc. hired Dana Whitfield in Dallas ."]})
    assert isinstance(spans, list)


def _param_count(encoder_dir) -> int:
    from transformers import AutoModel

    return sum(p.numel() for p in AutoModel.from_pretrained(encoder_dir).parameters())


def test_distill_refuses_a_teacher_without_the_data_types_and_a_too_deep_student(mlflow_store, tiny_encoder_dir,
                                                                                  tmp_path, capsys):
    from findistill.models.loading import load_token_classifier, load_tokenizer

    narrow = tmp_path / "per-only"
    load_token_classifier(str(tiny_encoder_dir), ["O", "B-PER", "I-PER"]).save_pretrained(narrow)
    load_tokenizer(str(tiny_encoder_dir)).save_pretrained(narrow)
    assert cli_main(["distill", "--teacher", str(narrow), "--max_sentences", "20"]) == 2
    err = capsys.readouterr().err
    assert "the data has entity types ['LOC', 'MISC', 'ORG'] that the model does not predict" in err
    assert cli_main(["distill", "--teacher", str(narrow), "--data", str(tmp_path / "x.conll")]) == 2
    assert "x.conll" in capsys.readouterr().err
    wide = tmp_path / "all"
    load_token_classifier(str(tiny_encoder_dir), __import__("conftest").LABELS).save_pretrained(wide)
    load_tokenizer(str(tiny_encoder_dir)).save_pretrained(wide)
    assert cli_main(["distill", "--teacher", str(wide), "--student_layers", "3", "--max_sentences", "20"]) == 2
    assert "cannot be deeper than its teacher (3 layers asked, the teacher has 2)" in capsys.readouterr().err
    assert cli_main(["distill", "--teacher", str(wide), "--student_layers", "1", "--hidden_layers", "1:9",
                     "--max_sentences", "20"]) == 2
    assert "parameter 'hidden_layers': pair '1:9' out of range" in capsys.readouterr().err
    assert cli_main(["distill", "--teacher", str(wide), "--student_layers", "1",
                     "--transfer_data", str(tmp_path / "none.txt"),
                     "--max_sentences", "20"]) == 2
    assert "none.txt" in capsys.readouterr().err
    assert cli_main(["distill", "--teacher", str(wide), "--attention_weight", "1"]) == 2
    assert "cache_teacher" in capsys.readouterr().err
    assert cli_main(["distill", "--max_sentences", "20"]) == 2
    assert "parameter 'teacher'" in capsys.readouterr().err
    assert mlflow.search_runs(search_all_experiments=True).empty  # no run was opened for any of these


def test_adapt_through_mlflow_run_gives_an_encoder_that_finetune_takes(mlflow_store, tiny_encoder_dir):
    sec = shared_corpus("sec-filings")
    done = _mlflow_run("adapt", mlflow_store, "adapt", model=tiny_encoder_dir, data=sec, max_sentences=60, epochs=2,
                       learning_rate=0.005, batch_size=8, eval_sentences=20)
    assert done.returncode == 0, done.stderr[-3000:]
    run = _only_run("adapt", "adapt")
    assert run["tags.findistill.adapt_mode"] == "dapt" and run["tags.findistill.mlm_head_fresh"] == "true"
    assert run["metrics.heldout_pppl_word"] < run["metrics.heldout_pppl_word_before"]
    assert run["metrics.heldout_mlm_loss"] < run["metrics.heldout_mlm_loss_before"]
    assert run["metrics.epochs_run"] == 2 and run["metrics.params_total"] > 0
    history = MlflowClient().get_metric_history(run.run_id, "val_loss")
    assert [m.step for m in history] == [1, 2]
    answer = mlflow.pyfunc.load_model(f"runs:/{run.run_id}/model").predict({"text": ["Shares of [MASK] rose ."]})
    assert len(answer[0]) == 1 and len(answer[0][0]["candidates"]) == 5  # one mask, five candidates
    assert cli_main(["finetune", "--model", f"runs:/{run.run_id}/model", "--data", str(sec), "--max_sentences", "30",
                     "--epochs", "1", "--max_length", "64", "--measure_resources", "false"]) == 0


def test_tokenizer_stages_and_main_through_mlflow_run(mlflow_store, tiny_encoder_dir):
    """train_tokenizer -> analyze_tokenization, and the whole main chain, each as `mlflow run` entry points."""
    sec = shared_corpus("sec-filings")
    done = _mlflow_run("train_tokenizer", mlflow_store, "tokenizers", data=sec, max_sentences=200, method="trim",
                       vocab_size=2500)
    assert done.returncode == 0, done.stderr[-3000:]
    built = _only_run("tokenizers", "train_tokenizer")
    assert built["metrics.vocab_size"] == 2500 and built["tags.findistill.tokenizer_name"] == "trim-2.5k"
    done = _mlflow_run("analyze_tokenization", mlflow_store, "tokenizers", corpora=f"sec={sec}", max_sentences=50,
                       tokenizers=f"packaged:all-MiniLM-L6-v2,trim=runs:/{built.run_id}/tokenizer")
    assert done.returncode == 0, done.stderr[-3000:]
    analysed = _only_run("tokenizers", "analyze_tokenization")
    assert analysed["metrics.vocab_size.trim"] == 2500
    assert analysed["metrics.fertility_mean.sec.trim"] >= analysed["metrics.fertility_mean.sec.teacher"] > 1.0

    done = _mlflow_run("main", mlflow_store, "main", model=tiny_encoder_dir, strategy="finetune-distill",
                       tokenizer="same", student_layers=1, epochs=1, max_sentences=40, max_length=64)
    assert done.returncode == 0, done.stderr[-3000:]
    main = _only_run("main", "main")
    assert main["tags.mlflow.runName"] == "main finetune-distill"
    assert main["metrics.teacher_params_total"] > main["metrics.student_params_total"] > 0
    assert main["metrics.speedup_cpu_b1"] == pytest.approx(
        main["metrics.teacher_latency_cpu_b1_ms_p50"] / main["metrics.student_latency_cpu_b1_ms_p50"])
    table = mlflow.artifacts.load_text(f"runs:/{main.run_id}/pipeline.md")
    assert "one fresh Python process" in table and "| teacher |" in table and "| student |" in table
    assert "Loading weights" not in done.stdout + done.stderr and "LOAD REPORT" not in done.stdout + done.stderr
